//! The trust boundary over the real binary: one authorization policy (src/api/policy.rs).
//! Each finding of the hostile-insider review is tried again here, and each refused request is
//! checked to have changed nothing (every table, `hostile::snapshot`).
//!
//! Two regions: the demo's Huangpu (310101) and a second one, 310999, bootstrapped with
//! `pledgeflow staff` and organised by its own regional admin through the API.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::bin;
use crate::hostile::snapshot;
use crate::http::{graphql_as, start, Server};

const OTHER: &str = "310999";
const OTHER_DEPT: &str = "310999-SCJG";
const OTHER_DIV: &str = "310999-SCJG-SP";
/// A demo applicant of Huangpu.
const HUANGPU_APPLICANT: &str = "91310110666007217T";

struct Two {
    server: Option<Server>,
    /// The installation's signing key file, shared by the server and the token command (on
    /// PostgreSQL there is no database file to keep it beside).
    key_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
    pg: Option<crate::helpers::TestDb>,
    base: String,
    url: String,
    http: reqwest::Client,
    db: sea_orm::DatabaseConnection,
}

impl Two {
    /// The installation on SQLite, and on PostgreSQL too when PLEDGEFLOW_TEST_DATABASE_URL is set.
    async fn all() -> Vec<Self> {
        let mut out = vec![Self::start(None).await];
        if let Some(admin) = std::env::var("PLEDGEFLOW_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            out.push(Self::start(Some(crate::helpers::TestDb::postgres(&admin).await)).await);
        }
        out
    }

    /// Stops the server and drops a PostgreSQL database.
    async fn done(mut self) {
        self.server.take();
        if let Some(pg) = self.pg.take() {
            pg.cleanup().await;
        }
    }

    /// The demo, and region 310999 with a registration authority, a supervision division and
    /// one staff member of each role.
    async fn start(pg: Option<crate::helpers::TestDb>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("signing.key");
        let key_text = key_file.display().to_string();
        let mut env = vec![("PLEDGEFLOW_CLOCK", "manual"), ("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099"), ("PLEDGEFLOW_KEY_FILE", key_text.as_str())];
        if let Some(db) = &pg {
            env.push(("PLEDGEFLOW_DATABASE_URL", db.url.as_str()));
        }
        let (server, base, url) = start(dir.path(), &env).await;
        let url = pg.as_ref().map_or(url, |db| db.url.clone());
        let out = Command::new(bin())
            .args(["staff", "--id", "admin-99", "--name", "外区管理", "--role", "regional_admin", "--region", OTHER, "--region-name", "外区"])
            .env("PLEDGEFLOW_DATABASE_URL", &url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let db = pledgeflow::store::connect(&url, 1).await.unwrap();
        let t = Self { server: Some(server), key_file, _dir: dir, pg, base, url, http: crate::http::client(), db };
        let admin = t.token("admin-99", "regional_admin");
        let r = t
            .ask(&admin, "mutation($i: PutDepartmentInput!) { putDepartment(input: $i) { code } }", json!({"i": {"region": OTHER, "regionName": "外区", "code": OTHER_DEPT,
                "name": "外区市场监督管理局", "side": "approval", "registrationAuthority": true, "divisions": [{"code": OTHER_DIV, "name": "食品科"}]}}))
            .await;
        assert!(r.get("errors").is_none(), "{r}");
        for (id, role, division) in [("window-99", "window", None), ("approver-99", "approver", None), ("supervisor-99", "supervisor", None), ("inspector-99", "inspector", Some(OTHER_DIV))] {
            let r = t
                .ask(&admin, "mutation($i: PutStaffInput!) { putStaff(input: $i) { code } }", json!({"i": {"id": id, "name": id, "department": OTHER_DEPT, "division": division, "roles": [role]}}))
                .await;
            assert!(r.get("errors").is_none(), "{r}");
        }
        // The demo's signals (a bundle's children opened once its business licence is
        // approved) are delivered by the outbox loop just after start: the tests' snapshots of
        // what a refused request left must not race them.
        for _ in 0..200 {
            use sea_orm::{ConnectionTrait, Statement};
            let sql = "SELECT COUNT(*) AS n FROM outbox WHERE channel = 'signal' AND status = 'pending'";
            let row = t.db.query_one_raw(Statement::from_string(t.db.get_database_backend(), sql.to_string())).await.unwrap().unwrap();
            if row.try_get::<i64>("", "n").unwrap() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        t
    }

    fn token(&self, subject: &str, role: &str) -> String {
        self.mint(subject, &["--role", role])
    }

    /// A token `pledgeflow token` refuses to mint (a role without the scope it needs), signed
    /// here with the installation's key: the server must refuse it as well.
    async fn mint_unchecked(&self, subject: &str, roles: &[&str]) -> String {
        let config = pledgeflow::config::Config { database_url: self.url.clone(), key_file: Some(self.key_file.clone()), ..Default::default() };
        let keys = pledgeflow::auth::keys(&self.db, &config.tokens()).await.unwrap();
        let claims = pledgeflow::auth::Claims::new(subject, roles.iter().map(|r| r.to_string()).collect(), chrono::Utc::now(), chrono::Duration::hours(1));
        keys.mint(&claims).unwrap()
    }

    /// `pledgeflow token --subject SUBJECT ARGS…` with this installation's key.
    fn mint(&self, subject: &str, args: &[&str]) -> String {
        let out = Command::new(bin())
            .args(["token", "--subject", subject])
            .args(args)
            .env("PLEDGEFLOW_DATABASE_URL", &self.url)
            .env("PLEDGEFLOW_KEY_FILE", &self.key_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    async fn ask(&self, token: &str, query: &str, variables: Value) -> Value {
        graphql_as(&self.http, &self.base, token, json!({"query": query, "variables": variables})).await
    }
}

/// The code and reason of the first error.
fn refused(r: &Value) -> (String, String) {
    let ext = &r["errors"][0]["extensions"];
    (ext["code"].as_str().unwrap_or_else(|| panic!("expected an error: {r}")).to_string(), ext["reason"].as_str().unwrap_or("").to_string())
}

fn pair(code: &str, reason: &str) -> (String, String) {
    (code.to_string(), reason.to_string())
}

const DEREGISTER: &str = "mutation($i: DeregisterBusinessLicenceInput!) { deregisterBusinessLicence(input: $i) { ended } }";

#[tokio::test]
async fn deregistration_belongs_to_the_registration_authority_of_the_enterprises_region() {
    for t in Two::all().await {
        let before = snapshot(&t.db).await;
        let input = json!({"i": {"uscc": HUANGPU_APPLICANT, "reason": "吊销"}});
        // Another region's registration authority: the enterprise is not theirs to know of.
        let r = t.ask(&t.token("approver-99", "approver"), DEREGISTER, input.clone()).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "{r}");
        // An approver of the right region but not of its registration authority (no establishment
        // record exists for this demo enterprise: the check does not depend on one).
        let r = t.ask(&t.token("approver-02", "approver"), DEREGISTER, input.clone()).await;
        assert_eq!(refused(&r), pair("FORBIDDEN", "NOT_REGISTRATION_AUTHORITY"), "{r}");
        // A window officer: a role refusal.
        let r = t.ask(&t.token("window-01", "window"), DEREGISTER, input.clone()).await;
        assert_eq!(refused(&r), pair("FORBIDDEN", "ROLE_NOT_ALLOWED"), "{r}");
        assert_eq!(snapshot(&t.db).await, before, "a refused deregistration changed nothing");
        // The registration authority of Huangpu may.
        let r = t.ask(&t.token("approver-01", "approver"), DEREGISTER, input).await;
        assert!(r.get("errors").is_none(), "{r}");
        t.done().await;
    }
}

#[tokio::test]
async fn upserts_cannot_move_another_regions_department_staff_or_items() {
    for t in Two::all().await {
        let admin = t.token("admin-99", "regional_admin");
        let before = snapshot(&t.db).await;
        let put_department = "mutation($i: PutDepartmentInput!) { putDepartment(input: $i) { code } }";
        let hijack = |region: &str| json!({"i": {"region": region, "regionName": "外区", "code": "310101-SCJG", "name": "劫持", "side": "approval", "email": "attacker@example.com", "divisions": []}});
        let r = t.ask(&admin, put_department, hijack(OTHER)).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "moving Huangpu's department into 310999: {r}");
        let r = t.ask(&admin, put_department, hijack("310101")).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "writing into Huangpu: {r}");
        // A division of another region's department is not taken over either.
        let r = t
            .ask(&admin, put_department, json!({"i": {"region": OTHER, "regionName": "外区", "code": "310999-NEW", "name": "新局", "side": "supervision", "divisions": [{"code": "310101-SCJG-SP", "name": "劫持"}]}}))
            .await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "{r}");
        let r = t
            .ask(&admin, "mutation($i: PutStaffInput!) { putStaff(input: $i) { code } }", json!({"i": {"id": "inspector-sp-1", "name": "劫持", "department": OTHER_DEPT, "roles": ["inspector"]}}))
            .await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "overwriting Huangpu's inspector: {r}");
        let r = t
            .ask(&admin, "mutation($i: PutStaffInput!) { putStaff(input: $i) { code } }", json!({"i": {"id": "mole", "name": "劫持", "department": "310101-SCJG", "roles": ["approver"]}}))
            .await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "a staff member placed in Huangpu: {r}");
        let item = |code: &str, department: &str| {
            json!({"i": {"code": code, "name": "劫持", "department": department, "spec": {
                "legalBasis": "x", "reformMode": "x", "conditions": ["c"], "materials": [{"code": "M01", "name": "m", "deferrable": false}],
                "modes": {"verification": false, "afterTheFact": false}, "commitmentTemplate": "t", "commitmentVersion": 1, "breachConsequences": "b",
                "licencePattern": "X{seq:04}"}}})
        };
        let put_item = "mutation($i: PutApprovalItemInput!) { putApprovalItem(input: $i) { item { version } } }";
        let r = t.ask(&admin, put_item, item("310101-FOOD-01", OTHER_DEPT)).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "taking over Huangpu's item: {r}");
        let r = t.ask(&admin, put_item, item("310999-NEW-01", "310101-SCJG")).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "an item given to Huangpu's department: {r}");
        // A supervisor is no organiser.
        let r = t.ask(&t.token("supervisor-99", "supervisor"), put_item, item("310999-NEW-01", OTHER_DEPT)).await;
        assert_eq!(refused(&r), pair("FORBIDDEN", "ROLE_NOT_ALLOWED"), "{r}");
        assert_eq!(snapshot(&t.db).await, before, "a refused upsert changed nothing");
        // Nor does another region's catalogue show in its listings.
        let r = t.ask(&admin, "{ approvalItems { totalCount } approvalItem(code: \"310101-FOOD-01\") { code } }", json!({})).await;
        assert_eq!((&r["data"]["approvalItems"]["totalCount"], &r["data"]["approvalItem"]), (&json!(0), &Value::Null), "{r}");
        let r = t.ask(&t.token("admin-01", "regional_admin"), "{ approvalItem(code: \"310101-FOOD-01\") { code } }", json!({})).await;
        assert_eq!(r["data"]["approvalItem"]["code"], "310101-FOOD-01", "{r}");
        t.done().await;
    }
}

#[tokio::test]
async fn credit_repairs_and_imports_reach_only_the_callers_regions_applicants() {
    for t in Two::all().await {
        use sea_orm::{ConnectionTrait, Statement};
        let row = t
            .db
            .query_one_raw(Statement::from_string(t.db.get_database_backend(), "SELECT id FROM credit_records WHERE kind IN ('breach', 'revocation') AND repaired_at IS NULL".to_string()))
            .await
            .unwrap()
            .expect("the demo has a revocation on record");
        let record: String = row.try_get("", "id").unwrap();
        let before = snapshot(&t.db).await;
        let repair = "mutation($i: RepairCreditInput!) { repairCredit(input: $i) { repair { kind } } }";
        let r = t.ask(&t.token("supervisor-99", "supervisor"), repair, json!({"i": {"recordId": record, "reason": "外区修复"}})).await;
        assert_eq!(refused(&r).0, "NOT_FOUND", "{r}");
        let admin = t.token("admin-99", "regional_admin");
        let r = t
            .ask(&admin, "mutation($i: ImportCreditInput!) { importCredit(input: $i) { updated } }", json!({"i": {"records": [{"uscc": HUANGPU_APPLICANT, "tier": "D", "dishonest": true}]}}))
            .await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "{r}");
        let r = t
            .ask(
                &admin,
                "mutation($i: ImportElectronicLicencesInput!) { importElectronicLicences(input: $i) { imported } }",
                json!({"i": {"licences": [{"holderUscc": HUANGPU_APPLICANT, "kind": "business_licence", "number": "310101000011111", "validUntil": "2026-01-01", "revoked": true}]}}),
            )
            .await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "{r}");
        // Nor may another region read the applicant or its records.
        let r = t.ask(&t.token("supervisor-99", "supervisor"), "query($u: String!) { applicant(uscc: $u) { name } creditRecords(uscc: $u) { id } }", json!({"u": HUANGPU_APPLICANT})).await;
        assert_eq!((&r["data"]["applicant"], &r["data"]["creditRecords"]), (&Value::Null, &json!([])), "{r}");
        assert_eq!(snapshot(&t.db).await, before, "a refused repair or import changed nothing");
        // Huangpu's supervisor reaches it: refused only by the record's minimum publication period.
        let r = t.ask(&t.token("supervisor-01", "supervisor"), repair, json!({"i": {"recordId": record, "reason": "本区修复"}})).await;
        assert_eq!(refused(&r), pair("BAD_USER_INPUT", "REPAIR_TOO_EARLY"), "{r}");
        t.done().await;
    }
}

#[tokio::test]
async fn draws_outbox_and_return_rates_stay_in_the_callers_region() {
    for t in Two::all().await {
        let (sup99, sup01) = (t.token("supervisor-99", "supervisor"), t.token("supervisor-01", "supervisor"));
        let draw = "mutation { drawInspections(input: {seed: \"7\"}) { draw { poolSize picks { caseId } } } }";
        let tasks = "SELECT COUNT(*) AS n FROM workflow_instances WHERE definition_name = 'supervision-task'";
        let count = |sql: &'static str| {
            let db = t.db.clone();
            async move {
                use sea_orm::{ConnectionTrait, Statement};
                let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap().unwrap();
                row.try_get::<i64>("", "n").unwrap()
            }
        };
        let before = count(tasks).await;
        let r = t.ask(&sup99, draw, json!({})).await;
        assert_eq!(r["data"]["drawInspections"]["draw"], json!({"poolSize": 0, "picks": []}), "310999 has no cases to draw: {r}");
        assert_eq!(count(tasks).await, before, "no task created on another region's cases");
        // Huangpu's draw reaches Huangpu's licensed after-the-fact cases, and only its own list shows it.
        let r = t.ask(&sup01, draw, json!({})).await;
        assert!(r["data"]["drawInspections"]["draw"]["poolSize"].as_i64().unwrap() > 0, "{r}");
        let list = "{ inspectionDraws { poolSize drawnBy } }";
        let r = t.ask(&sup99, list, json!({})).await;
        assert_eq!(r["data"]["inspectionDraws"], json!([{"poolSize": 0, "drawnBy": "supervisor-99"}]), "{r}");
        let r = t.ask(&sup01, list, json!({})).await;
        assert_eq!(r["data"]["inspectionDraws"].as_array().unwrap().len(), 1, "{r}");

        let before = snapshot(&t.db).await;
        let outbox = "{ outbox { totalCount } dead: outbox(filter: {status: DEAD}) { totalCount } }";
        let r = t.ask(&t.token("admin-99", "regional_admin"), outbox, json!({})).await;
        assert_eq!((&r["data"]["outbox"]["totalCount"], &r["data"]["dead"]["totalCount"]), (&json!(0), &json!(0)), "{r}");
        let r = t.ask(&t.token("admin-01", "regional_admin"), outbox, json!({})).await;
        assert!(r["data"]["outbox"]["totalCount"].as_i64().unwrap() > 0, "Huangpu's admin sees Huangpu's mail: {r}");
        let rate = "query($o: String) { returnRate(officer: $o) { intake } }";
        let r = t.ask(&sup99, rate, json!({"o": "window-01"})).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "{r}");
        let r = t.ask(&sup01, rate, json!({"o": "window-01"})).await;
        assert!(r.get("errors").is_none(), "{r}");
        assert_eq!(snapshot(&t.db).await, before, "listings changed nothing");
        t.done().await;
    }
}

const PUT_APPLICANT: &str = "mutation($i: PutApplicantInput!) { putApplicant(input: $i) { applicant { name } } }";

#[tokio::test]
async fn applicant_master_data_belongs_to_its_regions_window_and_admin_and_each_change_is_recorded() {
    for t in Two::all().await {
        let renamed = |name: &str| json!({"i": {"uscc": HUANGPU_APPLICANT, "name": name, "legalRepresentative": "冒名", "email": "attacker@example.com"}});
        let before = snapshot(&t.db).await;
        // An inspector of another department (of another region): a role refusal before any scope.
        let r = t.ask(&t.token("inspector-99", "inspector"), PUT_APPLICANT, renamed("劫持公司")).await;
        assert_eq!(refused(&r), pair("FORBIDDEN", "ROLE_NOT_ALLOWED"), "{r}");
        // Huangpu's own inspector and approver are not the window either.
        for (who, role) in [("inspector-sp-1", "inspector"), ("approver-01", "approver")] {
            let r = t.ask(&t.token(who, role), PUT_APPLICANT, renamed("劫持公司")).await;
            assert_eq!(refused(&r), pair("FORBIDDEN", "ROLE_NOT_ALLOWED"), "{who}: {r}");
        }
        // Another region's window: the applicant is not theirs.
        let r = t.ask(&t.token("window-99", "window"), PUT_APPLICANT, renamed("劫持公司")).await;
        assert_eq!(refused(&r), pair("NOT_FOUND", "OUT_OF_SCOPE"), "{r}");
        assert_eq!(snapshot(&t.db).await, before, "a refused putApplicant changed nothing");

        // Huangpu's window may, and the change is on record: who, when, old and new.
        let r = t.ask(&t.token("window-01", "window"), PUT_APPLICANT, json!({"i": {"uscc": HUANGPU_APPLICANT, "name": "上海新名称有限公司", "legalRepresentative": "张三"}})).await;
        assert!(r.get("errors").is_none(), "{r}");
        let changes = "query($u: String!) { applicantChanges(uscc: $u) { field oldValue newValue changedBy } }";
        let r = t.ask(&t.token("supervisor-01", "supervisor"), changes, json!({"u": HUANGPU_APPLICANT})).await;
        let list = r["data"]["applicantChanges"].as_array().unwrap_or_else(|| panic!("{r}"));
        assert!(list.iter().any(|c| c["field"] == "name" && c["newValue"] == "上海新名称有限公司" && c["changedBy"] == "window-01" && c["oldValue"].is_string()), "{r}");
        let r = t.ask(&t.token("supervisor-99", "supervisor"), changes, json!({"u": HUANGPU_APPLICANT})).await;
        assert_eq!(r["data"]["applicantChanges"], json!([]), "another region reads none: {r}");
        t.done().await;
    }
}

#[tokio::test]
async fn an_applicant_never_sees_its_draw_inspector_or_look_at_deadline_but_sees_the_outcome() {
    for t in Two::all().await {
        let uscc = "91110000600037341L";
        let (window, approver) = (t.token("window-01", "window"), t.token("approver-01", "approver"));
        let (division, inspector) = (t.token("divadmin-sp", "division_admin"), t.token("inspector-sp-1", "inspector"));
        let applicant = t.mint("enterprise-user", &["--role", "applicant", "--uscc", uscc]);
        let provided = json!([{"code": "M01", "status": "PROVIDED", "fileRef": "D1"}, {"code": "M02", "status": "PROVIDED", "fileRef": "D2"}, {"code": "M03", "status": "PROVIDED", "fileRef": "D3"}]);
        let r = t
            .ask(&window, "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }", json!({"i": {"applicantUscc": uscc, "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": "刘洋", "materials": provided}}))
            .await;
        let case = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        let r = t.ask(&approver, "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }", json!({"id": case})).await;
        assert!(r.get("errors").is_none(), "{r}");
        let r = t.ask(&division, "query($p: ID!) { workflowInstances(filter: {parentId: $p}) { edges { node { id } } } }", json!({"p": case})).await;
        let task = r["data"]["workflowInstances"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();

        let sees = "query($c: ID!, $t: ID!) { case(id: $c) { state inspectionOutcomes { state result } } task: workflowInstance(id: $t) { id context timers { name } }
            children: workflowInstances(filter: {parentId: $c}) { totalCount } tasks: workflowInstances(filter: {definition: \"supervision-task\"}) { totalCount }
            all: workflowInstances { edges { node { definitionName context } } } }";
        let look = |r: &Value| {
            assert!(r.get("errors").is_none(), "{r}");
            let d = &r["data"];
            assert_eq!(d["case"]["state"], "licensed", "the applicant sees its case: {r}");
            assert_eq!((&d["task"], &d["children"]["totalCount"], &d["tasks"]["totalCount"]), (&Value::Null, &json!(0), &json!(0)), "no task, by id or in a list: {r}");
            let all = d["all"]["edges"].as_array().unwrap();
            assert!(!all.is_empty() && all.iter().all(|e| e["node"]["definitionName"] != "supervision-task"), "{r}");
            let text = r.to_string();
            assert!(!text.contains("inspector-sp-1") && !text.contains("\"draw\"") && !text.contains("look_at"), "no inspector, draw or look-at limit anywhere: {r}");
            d["case"]["inspectionOutcomes"].clone()
        };
        let before = snapshot(&t.db).await;
        let r = t.ask(&applicant, sees, json!({"c": case, "t": task})).await;
        assert_eq!(look(&r), json!([]), "no outcome before the visit");
        let r = t.ask(&applicant, "{ inspectionDraws { id } }", json!({})).await;
        assert_eq!(refused(&r), pair("FORBIDDEN", "ROLE_NOT_ALLOWED"), "{r}");
        assert_eq!(snapshot(&t.db).await, before, "reading changed nothing");

        // The visit, then the result fed back: the outcome is the applicant's to see.
        let today = {
            let r = t.ask(&t.token("admin-01", "regional_admin"), "{ serverClock { now } }", json!({})).await;
            let now: chrono::DateTime<chrono::Utc> = r["data"]["serverClock"]["now"].as_str().unwrap().parse().unwrap();
            now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive().to_string()
        };
        let conditions = ["经营场所面积不少于 10 平方米，与有毒有害场所距离 25 米以上", "从业人员持有效健康证明", "设有食品安全管理人员和管理制度"];
        let findings: Vec<Value> = conditions.iter().map(|c| json!({"condition": c, "kept": true})).collect();
        for (who, query, input) in [
            (&division, "mutation($i: AssignInspectorsInput!) { assignInspectors(input: $i) { task { state } } }", json!({"taskId": task, "inspectors": ["inspector-sp-1"]})),
            (&inspector, "mutation($i: RecordInspectionInput!) { recordInspection(input: $i) { task { state } } }", json!({"taskId": task, "inspectedOn": today, "findings": findings, "evidence": ["IMG-1"]})),
            (&inspector, "mutation($i: FeedBackInspectionInput!) { feedBackInspection(input: $i) { task { state } } }", json!({"taskId": task})),
        ] {
            let r = t.ask(who, query, json!({"i": input})).await;
            assert!(r.get("errors").is_none(), "{r}");
        }
        let r = t.ask(&applicant, sees, json!({"c": case, "t": task})).await;
        assert_eq!(look(&r), json!([{"state": "closed_kept", "result": "kept"}]), "the outcome after the visit");
        t.done().await;
    }
}

#[tokio::test]
async fn a_token_the_staff_registry_does_not_bear_out_is_unauthenticated_and_changes_nothing() {
    for t in Two::all().await {
        let before = snapshot(&t.db).await;
        let input = json!({"i": {"uscc": HUANGPU_APPLICANT, "name": "劫持公司", "legalRepresentative": "冒名"}});
        let no_enterprise = t.mint_unchecked("someone", &["applicant"]).await;
        let cases = [
            // A Huangpu window officer claiming the other region.
            (t.mint("window-01", &["--role", "window", "--region", OTHER]), "CLAIMS_DISAGREE_WITH_REGISTRY"),
            (t.mint("window-01", &["--role", "window", "--department", OTHER_DEPT]), "CLAIMS_DISAGREE_WITH_REGISTRY"),
            // A role the registry does not give the subject.
            (t.mint("window-01", &["--role", "regional_admin"]), "CLAIMS_DISAGREE_WITH_REGISTRY"),
            // Nobody the registry knows.
            (t.mint("stranger", &["--role", "regional_admin", "--region", "310101"]), "STAFF_NOT_REGISTERED"),
            // An applicant token naming no enterprise, and one mixing roles.
            (no_enterprise, "APPLICANT_WITHOUT_USCC"),
            (t.mint("window-01", &["--role", "window", "--role", "applicant", "--uscc", HUANGPU_APPLICANT]), "CLAIMS_DISAGREE_WITH_REGISTRY"),
        ];
        for (token, reason) in cases {
            let r = t.ask(&token, PUT_APPLICANT, input.clone()).await;
            assert_eq!(refused(&r), pair("UNAUTHENTICATED", reason), "{r}");
        }
        assert_eq!(snapshot(&t.db).await, before, "a refused token changed nothing");
        // The registry's own claims (or none) pass, and the registry gives the scope.
        let r = t.ask(&t.mint("window-01", &["--role", "window"]), "{ departments { code } }", json!({})).await;
        assert!(r["data"]["departments"].as_array().unwrap().iter().any(|d| d["code"] == "310101-SCJG"), "{r}");
        t.done().await;
    }
}
