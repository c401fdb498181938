//! The window through the GraphQL API: catalogue, applicants, the credit gate, the three
//! modes from intake to licence, and every refusal leaving nothing changed.

use chrono::{Duration, TimeZone, Utc};
use pledgeflow::{auth::Claims, clock::ManualClock};
use serde_json::{json, Value};

use crate::helpers::{backends, engine, Api};

pub(crate) fn who(sub: &str, role: &str, scope: &[(&str, &str)]) -> Claims {
    let mut c = Claims::new(sub, vec![role.into()], Utc::now(), Duration::hours(1));
    for (k, v) in scope {
        match *k {
            "region" => c.region = Some(v.to_string()),
            "department" => c.department = Some(v.to_string()),
            "division" => c.division = Some(v.to_string()),
            _ => unreachable!(),
        }
    }
    c
}

pub(crate) fn code(r: &Value) -> (&str, Option<&str>) {
    let ext = &r["errors"][0]["extensions"];
    (ext["code"].as_str().unwrap_or_else(|| panic!("no error in {r}")), ext["field"].as_str())
}

pub(crate) const FOOD: &str = "310101-FOOD-01";
const EXCLUDED: &str = "310101-TZSB-01";
const GOOD: &str = "91310110666007217T";
const DISHONEST: &str = "91310115591693856A";

/// A region, an approval department, a supervision division, and a food licence item.
pub(crate) async fn catalogue(api: &Api, admin: &Claims) {
    let dept = "mutation($i: PutDepartmentInput!) { putDepartment(input: $i) { code } }";
    api.ok(admin, dept, json!({"i": {"region": "310101", "regionName": "黄浦区", "code": "310101-SCJG", "name": "黄浦区市场监督管理局",
        "side": "approval", "divisions": [{"code": "310101-SCJG-SP", "name": "食品经营监管科", "email": "sp@example.gov.cn"}]}})).await;
    let item = json!({"i": {"code": FOOD, "name": "食品经营许可", "department": "310101-SCJG", "spec": {
        "legalBasis": "《中华人民共和国食品安全法》第三十五条", "reformMode": "实行告知承诺",
        "conditions": ["经营场所面积不少于 10 平方米", "从业人员持有效健康证明"],
        "materials": [
            {"code": "M01", "name": "营业执照", "deferrable": false, "licenceKind": "business_licence"},
            {"code": "M02", "name": "从业人员健康证明", "deferrable": true},
            {"code": "M03", "name": "经营场所平面图", "deferrable": true}],
        "modes": {"deferralMaxWorkingDays": 20, "verification": true, "afterTheFact": true},
        "commitmentTemplate": "本人{{ signed_by }}代表{{ applicant.name }}承诺：申请{{ item.name }}符合以下条件：{% for c in item.conditions %}{{ c }}；{% endfor %}{% if due %}并于{{ due }}前补齐容缺材料。{% endif %}如有不实，愿承担{{ item.breach_consequences }}。",
        "commitmentVersion": 3, "breachConsequences": "撤销许可并记入信用记录",
        "supervision": {"department": "310101-SCJG", "division": "310101-SCJG-SP", "supervisionItem": "SUP-FOOD-01"},
        "licencePattern": "JY{year}{seq:06}"}}});
    api.ok(admin, "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }", item.clone()).await;
    // Special equipment touches public safety: excluded from commitment approval.
    let mut excluded = item;
    excluded["i"]["code"] = json!(EXCLUDED);
    excluded["i"]["name"] = json!("特种设备使用登记");
    excluded["i"]["excluded"] = json!(true);
    api.ok(admin, "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }", excluded).await;
    let applicant = "mutation($i: PutApplicantInput!) { putApplicant(input: $i) { applicant { uscc } } }";
    for (uscc, name) in [(GOOD, "上海示例餐饮管理有限公司"), (DISHONEST, "上海示例便利店有限公司")] {
        api.ok(admin, applicant, json!({"i": {"uscc": uscc, "name": name, "legalRepresentative": "张三", "email": "boss@example.cn", "mobile": "13800000000"}})).await;
    }
    api.ok(admin, "mutation($i: ImportCreditInput!) { importCredit(input: $i) { updated } }",
        json!({"i": {"records": [{"uscc": GOOD, "tier": "A", "dishonest": false}, {"uscc": DISHONEST, "tier": "D", "dishonest": true}]}})).await;
    api.ok(admin, "mutation($i: ImportElectronicLicencesInput!) { importElectronicLicences(input: $i) { imported } }",
        json!({"i": {"licences": [{"holderUscc": GOOD, "kind": "business_licence", "number": "310101000123456", "validUntil": "2046-01-01"}]}})).await;
}

pub(crate) fn open(mode: &str, deferred: bool, days: Option<i64>) -> Value {
    let status = |c: &str| if deferred && c != "M01" { "DEFERRED" } else { "PROVIDED" };
    let m01 = if mode == "VERIFICATION" { json!({"code": "M01", "status": "TO_VERIFY", "licenceNumber": "310101000123456"}) } else { json!({"code": "M01", "status": "PROVIDED", "fileRef": "doc-1"}) };
    json!({"i": {"applicantUscc": GOOD, "itemCode": FOOD, "mode": mode, "signedBy": "张三", "deferralWorkingDays": days,
        "materials": [m01, {"code": "M02", "status": status("M02")}, {"code": "M03", "status": status("M03")}]}})
}

/// The Huangpu market regulator's food line on a fresh database at 10:00 local on `day`: the
/// engine, the API, an administrator, a window officer and an approver, the catalogue in place.
pub(crate) struct Office {
    _data: tempfile::TempDir,
    pub clock: ManualClock,
    pub engine: pledgeflow::runtime::Engine,
    pub api: Api,
    pub admin: Claims,
    pub window: Claims,
    pub approver: Claims,
}

impl Office {
    pub async fn open(db: &crate::helpers::TestDb, (y, m, d): (i32, u32, u32)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap().with_timezone(&Utc));
        let engine = engine(db, &clock).await;
        let api = Api::new(engine.clone(), data.path());
        let admin = who("admin", "regional_admin", &[("region", "310101")]);
        catalogue(&api, &admin).await;
        let window = who("window-07", "window", &[("department", "310101-SCJG")]);
        let approver = who("approver-02", "approver", &[("department", "310101-SCJG")]);
        Self { _data: data, clock, engine, api, admin, window, approver }
    }
}

pub(crate) const OPEN: &str = "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id state mode itemVersion commitmentText materials { code status } instance { deadlines { name at } } } } }";

#[tokio::test]
async fn a_deferral_case_runs_from_intake_to_licence_and_each_refusal_changes_nothing() {
    for db in backends().await {
        // Monday 28 September 2026.
        let o = Office::open(&db, (2026, 9, 28)).await;
        let (clock, e, api, admin, window, approver) = (&o.clock, &o.engine, &o.api, &o.admin, &o.window, &o.approver);
        let elsewhere = who("window-99", "window", &[("department", "310104-SCJG")]);
        let put_staff = "mutation($i: PutStaffInput!) { putStaff(input: $i) { code } }";
        let r = api.call(Some(&admin), put_staff, json!({"i": {"id": "window-07", "name": "李娜", "department": "310101-SCJG", "division": "NOPE", "roles": ["window"]}})).await;
        assert_eq!(code(&r), ("BAD_USER_INPUT", Some("division")));
        let r = api.call(Some(&admin), put_staff, json!({"i": {"id": "window-07", "name": "李娜", "department": "310101-SCJG", "roles": ["root"]}})).await;
        assert_eq!(code(&r), ("BAD_USER_INPUT", Some("roles")));
        api.ok(&admin, put_staff, json!({"i": {"id": "window-07", "name": "李娜", "department": "310101-SCJG", "roles": ["window"]}})).await;
        let put_sup = "mutation($i: PutSupervisionItemInput!) { putSupervisionItem(input: $i) { code } }";
        let r = api.call(Some(&admin), put_sup, json!({"i": {"code": "SUP-X", "name": "监管", "department": "310101-SCJG", "division": "ELSEWHERE"}})).await;
        assert_eq!(code(&r), ("BAD_USER_INPUT", Some("division")));
        api.ok(&admin, put_sup, json!({"i": {"code": "SUP-FOOD-01", "name": "食品经营事中事后监管", "department": "310101-SCJG", "division": "310101-SCJG-SP"}})).await;
        let r = api.ok(&window, "{ departments { code divisions { code email } } }", json!({})).await;
        assert_eq!(r["departments"], json!([{"code": "310101-SCJG", "divisions": [{"code": "310101-SCJG-SP", "email": "sp@example.gov.cn"}]}]));

        let count = |table: &'static str| {
            let db = e.db.clone();
            async move {
                use sea_orm::ConnectionTrait;
                let r = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}"))).await.unwrap().unwrap();
                r.try_get::<i64>("", "n").unwrap()
            }
        };
        let mut dishonest = open("DEFERRAL", true, Some(5));
        dishonest["i"]["applicantUscc"] = json!(DISHONEST);
        let mut bad_uscc = open("DEFERRAL", true, Some(5));
        bad_uscc["i"]["applicantUscc"] = json!("91310110666007217A");
        let mut unknown_item = open("DEFERRAL", true, Some(5));
        unknown_item["i"]["itemCode"] = json!("NO-SUCH-ITEM");
        let mut excluded = open("DEFERRAL", true, Some(5));
        excluded["i"]["itemCode"] = json!(EXCLUDED);
        let mut not_deferrable = open("DEFERRAL", true, Some(5));
        not_deferrable["i"]["materials"][0] = json!({"code": "M01", "status": "DEFERRED"});
        let refusals = [
            (window, dishonest, ("BAD_USER_INPUT", Some("mode"))),
            (window, bad_uscc, ("BAD_USER_INPUT", Some("applicantUscc"))),
            (window, unknown_item, ("NOT_FOUND", None)),
            (window, excluded, ("BAD_USER_INPUT", Some("mode"))),
            (window, open("DEFERRAL", true, Some(21)), ("BAD_USER_INPUT", Some("deferralWorkingDays"))),
            (window, not_deferrable, ("BAD_USER_INPUT", Some("materials"))),
            (&elsewhere, open("DEFERRAL", true, Some(5)), ("FORBIDDEN", None)),
            (approver, open("DEFERRAL", true, Some(5)), ("FORBIDDEN", None)),
        ];
        for (caller, vars, expected) in refusals {
            let r = api.call(Some(caller), OPEN, vars.clone()).await;
            assert_eq!(code(&r), expected, "{vars}: {r}");
        }
        assert_eq!((count("cases").await, count("workflow_instances").await), (0, 0), "refusals wrote nothing");

        // Deferral for 5 working days from Monday 28 September: 29, 30 September, then 1–7 October
        // are holidays, 8, 9 October, and Saturday 10 October is a 调休 working day: the fifth.
        let opened = api.ok(&window, OPEN, open("DEFERRAL", true, Some(5))).await;
        let case = &opened["openCase"]["case"];
        let id = case["id"].as_str().unwrap().to_string();
        assert_eq!(case["state"], "awaiting_materials");
        assert_eq!(case["instance"]["deadlines"][0]["at"], "2026-10-10T09:30:00+00:00");
        let letter = case["commitmentText"].as_str().unwrap();
        assert!(letter.contains("张三代表上海示例餐饮管理有限公司") && letter.contains("2026年10月10日（星期六）17:30"), "{letter}");

        // Editing the item makes a version 2; the running case keeps version 1.
        catalogue(&api, &admin).await;
        let r = api.call(Some(&admin), "{ approvalItem(code: \"310101-FOOD-01\") { version } }", json!({})).await;
        assert_eq!(r["data"]["approvalItem"]["version"], 2);
        let r = api.ok(&window, "query($id: ID!) { case(id: $id) { itemVersion } }", json!({"id": id})).await;
        assert_eq!(r["case"]["itemVersion"], 1);

        let submit = "mutation($i: SubmitMaterialInput!) { submitMaterial(input: $i) { case { state materials { code status receivedBy } } } }";
        let r = api.call(Some(&elsewhere), submit, json!({"i": {"caseId": id, "code": "M02", "fileRef": "doc-2"}})).await;
        assert_eq!(code(&r).0, "NOT_FOUND", "another department's case is not found");
        let r = api.call(Some(&window), submit, json!({"i": {"caseId": id, "code": "M01", "fileRef": "doc-2"}})).await;
        assert_eq!(code(&r), ("BAD_USER_INPUT", Some("code")), "M01 was not deferred");
        let r = api.ok(&window, submit, json!({"i": {"caseId": id, "code": "M02", "fileRef": "doc-2"}})).await;
        assert_eq!(r["submitMaterial"]["case"]["state"], "awaiting_materials");
        let r = api.ok(&window, submit, json!({"i": {"caseId": id, "code": "M03", "fileRef": "doc-3"}})).await;
        assert_eq!(r["submitMaterial"]["case"]["state"], "under_review", "all deferred materials in");
        let r = api.call(Some(&window), submit, json!({"i": {"caseId": id, "code": "M03", "fileRef": "doc-3"}})).await;
        assert_eq!(code(&r).0, "INVALID_TRANSITION", "a case under review takes no materials");

        let issue = "mutation($i: IssueLicenceInput!) { issueLicence(input: $i) { licenceNumber case { state licenceNumber } } }";
        let r = api.call(Some(&window), issue, json!({"i": {"caseId": id}})).await;
        assert_eq!(code(&r).0, "FORBIDDEN");
        let r = api.ok(&approver, issue, json!({"i": {"caseId": id}})).await;
        assert_eq!(r["issueLicence"]["licenceNumber"], "JY2026000001");
        assert_eq!(r["issueLicence"]["case"]["state"], "licensed");
        let events: Vec<String> = e.history(&id).await.unwrap().into_iter().map(|h| h.event).collect();
        assert_eq!(events, ["start", "materials_complete", "approve"]);
        // Handed over: the supervision task belongs to the linked division, whose admin sees it.
        let mut division_admin = who("divadmin", "division_admin", &[]);
        division_admin.division = Some("310101-SCJG-SP".into());
        let tasks = "{ workflowInstances(filter: {definition: \"supervision-task\"}) { totalCount edges { node { parentId } } } }";
        let r = api.ok(&division_admin, tasks, json!({})).await;
        assert_eq!(r["workflowInstances"]["edges"][0]["node"]["parentId"], id.as_str(), "{r}");

        // After the fact: decided on the spot, the next licence number; verification against the library.
        let opened = api.ok(&window, OPEN, open("AFTER_THE_FACT", false, None)).await;
        let spot = opened["openCase"]["case"]["id"].as_str().unwrap().to_string();
        let r = api.ok(&approver, issue, json!({"i": {"caseId": spot}})).await;
        assert_eq!(r["issueLicence"]["licenceNumber"], "JY2026000002");
        let opened = api.ok(&window, OPEN, open("VERIFICATION", false, None)).await;
        let verified = &opened["openCase"]["case"];
        assert_eq!(verified["state"], "under_review", "{verified}");
        assert_eq!(verified["materials"][0], json!({"code": "M01", "status": "verified"}));

        // Another deferral left to run out over the holiday: due Saturday 10 October (调休), so
        // reminded on Friday the 9th at 09:00, revoked at 17:30 on the 10th, a breach recorded,
        // the applicant and the department told.
        clock.set(chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 9, 28, 10, 0, 0).unwrap().with_timezone(&Utc));
        let lapsed = api.ok(&window, OPEN, open("DEFERRAL", true, Some(5))).await["openCase"]["case"]["id"].as_str().unwrap().to_string();
        let at = |d: u32, h: u32, m: u32| chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 10, d, h, m, 0).unwrap().with_timezone(&Utc);
        let events = |id: String| {
            let e = e.clone();
            async move { e.history(&id).await.unwrap().into_iter().map(|h| h.event).collect::<Vec<_>>() }
        };
        clock.set(at(9, 8, 59));
        e.sweep("s").await.unwrap();
        assert_eq!(events(lapsed.clone()).await, ["start"], "not before 09:00 on the 9th");
        clock.set(at(9, 9, 0));
        e.sweep("s").await.unwrap();
        assert_eq!(events(lapsed.clone()).await, ["start", "remind"]);
        clock.set(at(10, 17, 29));
        e.sweep("s").await.unwrap();
        assert_eq!(e.instance(&lapsed).await.unwrap().unwrap().state, "awaiting_materials");
        clock.set(at(10, 17, 30));
        e.sweep("s").await.unwrap();
        assert_eq!(events(lapsed.clone()).await, ["start", "remind", "expire"]);
        assert_eq!(e.instance(&lapsed).await.unwrap().unwrap().state, "breach_noticed");
        assert_eq!(count("credit_records").await, 0, "nothing recorded before the enterprise is heard");
        clock.set(e.instance(&lapsed).await.unwrap().unwrap().deadlines["response_due"]);
        e.sweep("s").await.unwrap();
        assert_eq!(events(lapsed.clone()).await, ["start", "remind", "expire", "response_lapsed"]);
        assert_eq!(e.instance(&lapsed).await.unwrap().unwrap().state, "revoked");
        assert_eq!(count("credit_records").await, 1, "one breach record");
        let told: Vec<String> = pledgeflow::store::outbox::list(&e.db, None, Some(&lapsed), 0, 20)
            .await
            .unwrap()
            .0
            .into_iter()
            .map(|o| format!("{}:{}:{}", o.channel, o.recipient, o.topic))
            .collect();
        for expected in ["email:applicant:deferral_reminder", "sms:applicant:deferral_reminder", "email:applicant:breach_notice", "email:department:breach_notice", "email:applicant:deferral_revoked", "email:department:revoked_on_behalf", "webhook:credit:breach"] {
            assert!(told.contains(&expected.to_string()), "{expected} in {told:?}");
        }
        let r = api.call(Some(&window), submit, json!({"i": {"caseId": lapsed, "code": "M02", "fileRef": "late"}})).await;
        assert_eq!(code(&r).0, "INVALID_TRANSITION", "a revoked case takes no materials");

        // A return at intake, with its category.
        let r = api.ok(&window, "mutation($i: ReturnApplicationInput!) { returnApplication(input: $i) { id } }",
            json!({"i": {"itemCode": FOOD, "applicantUscc": GOOD, "category": "OFFICER_ERROR", "reason": "漏收平面图"}})).await;
        assert!(r["returnApplication"]["id"].is_string());
        assert_eq!(count("returns").await, 1);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn licence_first_deferral_licenses_at_once_operates_after_materials_and_falls_if_they_never_come() {
    for db in backends().await {
        let o = Office::open(&db, (2026, 11, 2)).await;
        let (clock, e, api, admin, window, approver) = (&o.clock, &o.engine, &o.api, &o.admin, &o.window, &o.approver);
        // An item on commitment without a supervising division is refused: nothing may fall through.
        let mut orphan = json!({"i": {"code": "310101-X-01", "name": "无监管事项", "department": "310101-SCJG", "spec": {
            "legalBasis": "法", "reformMode": "实行告知承诺", "conditions": ["条件"], "materials": [{"code": "M01", "name": "营业执照"}],
            "modes": {"afterTheFact": true}, "commitmentTemplate": "承诺", "commitmentVersion": 1, "breachConsequences": "撤销",
            "supervision": null, "licencePattern": "X{seq}"}}});
        let r = api.call(Some(&admin), "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }", orphan.clone()).await;
        assert_eq!(code(&r), ("BAD_USER_INPUT", Some("spec")), "{r}");
        orphan["i"]["excluded"] = json!(true);
        api.ok(&admin, "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }", orphan).await;
        // The same item, now licence-first (a new version).
        let r = api.ok(&admin, "{ approvalItem(code: \"310101-FOOD-01\") { spec { legalBasis } } }", json!({})).await;
        assert!(r["approvalItem"]["spec"]["legalBasis"].is_string());
        let mut item = json!({"i": {"code": FOOD, "name": "食品经营许可", "department": "310101-SCJG", "spec": {
            "legalBasis": "《中华人民共和国食品安全法》第三十五条", "reformMode": "实行告知承诺", "conditions": ["条件"],
            "materials": [{"code": "M01", "name": "营业执照"}, {"code": "M02", "name": "从业人员健康证明", "deferrable": true}, {"code": "M03", "name": "平面图", "deferrable": true}],
            "modes": {"deferralMaxWorkingDays": 20, "deferralLicenceFirst": true},
            "commitmentTemplate": "承诺", "commitmentVersion": 4, "breachConsequences": "撤销", "supervision": null, "licencePattern": "JY{year}{seq:06}"}}});
        item["i"]["spec"]["supervision"] = json!({"department": "310101-SCJG", "division": "310101-SCJG-SP", "supervisionItem": "SUP-FOOD-01"});
        api.ok(&admin, "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }", item).await;

        let kept = api.ok(&window, OPEN, open("DEFERRAL", true, Some(10))).await["openCase"]["case"]["id"].as_str().unwrap().to_string();
        let lapsed = api.ok(&window, OPEN, open("DEFERRAL", true, Some(10))).await["openCase"]["case"]["id"].as_str().unwrap().to_string();
        let issue = "mutation($i: IssueLicenceInput!) { issueLicence(input: $i) { licenceNumber case { state } } }";
        for id in [&kept, &lapsed] {
            let r = api.ok(&approver, issue, json!({"i": {"caseId": id}})).await;
            assert_eq!(r["issueLicence"]["case"]["state"], "licensed_not_operating", "licensed before the materials: {r}");
        }
        let submit = "mutation($i: SubmitMaterialInput!) { submitMaterial(input: $i) { case { state } } }";
        api.ok(&window, submit, json!({"i": {"caseId": kept, "code": "M02", "fileRef": "doc-2"}})).await;
        let r = api.ok(&window, submit, json!({"i": {"caseId": kept, "code": "M03", "fileRef": "doc-3"}})).await;
        assert_eq!(r["submitMaterial"]["case"]["state"], "licensed", "may operate now");

        // The other runs past its deadline: the licence falls, with a breach credit record.
        let due = e.instance(&lapsed).await.unwrap().unwrap().deadlines["materials_due"];
        clock.set(due);
        e.sweep("s").await.unwrap();
        assert_eq!(e.instance(&lapsed).await.unwrap().unwrap().state, "breach_noticed", "after notice and the period to respond");
        clock.set(e.instance(&lapsed).await.unwrap().unwrap().deadlines["response_due"]);
        e.sweep("s").await.unwrap();
        assert_eq!(e.instance(&lapsed).await.unwrap().unwrap().state, "revoked");
        let events: Vec<String> = e.history(&lapsed).await.unwrap().into_iter().map(|h| h.event).collect();
        assert_eq!(events, ["start", "approve", "remind", "expire", "response_lapsed"]);
        let records = {
            use sea_orm::ConnectionTrait;
            let sql = format!("SELECT kind FROM credit_records WHERE instance_id = '{lapsed}'");
            e.db.query_all_raw(sea_orm::Statement::from_string(e.db.get_database_backend(), sql)).await.unwrap()
        };
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].try_get::<String>("", "kind").unwrap(), "breach");
        assert_eq!(e.instance(&kept).await.unwrap().unwrap().state, "licensed", "the kept one is untouched");
        db.cleanup().await;
    }
}

/// The audit trail per actor and per case through the API, within the caller's scope.
#[tokio::test]
async fn the_audit_trail_reads_per_actor_and_per_case_within_scope() {
    for db in backends().await {
        let o = Office::open(&db, (2026, 9, 28)).await;
        let (clock, api, admin, window, approver) = (&o.clock, &o.api, &o.admin, &o.window, &o.approver);
        let elsewhere = who("window-99", "window", &[("department", "310104-SCJG")]);
        let mut cases = Vec::new();
        for _ in 0..2 {
            let r = api.ok(&window, OPEN, open("AFTER_THE_FACT", false, None)).await;
            cases.push(r["openCase"]["case"]["id"].as_str().unwrap().to_string());
        }
        clock.advance(Duration::minutes(5));
        api.ok(&approver, "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }", json!({"id": cases[0]})).await;

        let trail = "query($f: AuditFilter) { auditTrail(filter: $f) { totalCount edges { node { instanceId seq event actor } } } }";
        let r = api.ok(&admin, trail, json!({"f": {"actor": "window-07"}})).await;
        let events: Vec<(&str, &str)> = r["auditTrail"]["edges"].as_array().unwrap().iter().map(|e| (e["node"]["instanceId"].as_str().unwrap(), e["node"]["event"].as_str().unwrap())).collect();
        assert_eq!(r["auditTrail"]["totalCount"], 2, "{r}");
        assert!(events.iter().all(|(_, ev)| *ev == "start"), "{events:?}");
        let r = api.ok(&admin, trail, json!({"f": {"actor": "approver-02"}})).await;
        assert_eq!(r["auditTrail"]["edges"][0]["node"]["event"], "decide_on_spot", "{r}");
        assert_eq!(r["auditTrail"]["edges"][0]["node"]["instanceId"], cases[0].as_str());
        // One case's trail, newest first; nothing from another department's window.
        let r = api.ok(&window, trail, json!({"f": {"instanceId": cases[0]}})).await;
        let seqs: Vec<i64> = r["auditTrail"]["edges"].as_array().unwrap().iter().map(|e| e["node"]["seq"].as_i64().unwrap()).collect();
        assert_eq!(seqs, [2, 1], "{r}");
        let r = api.ok(&elsewhere, trail, json!({"f": {"actor": "window-07"}})).await;
        assert_eq!(r["auditTrail"]["totalCount"], 0, "{r}");
        let r = api.ok(&admin, trail, json!({"f": {"actor": "window-07", "from": "2026-09-28T02:01:00Z"}})).await;
        assert_eq!(r["auditTrail"]["totalCount"], 0, "the two intakes were at 02:00Z: {r}");
    }
}
