//! Due process and consequences in proportion (issue #18), over the real binary: no breach where
//! nothing was promised (a verification supply run out); revocation as a procedure (notice,
//! statement, the department's decision, silence decided on its behalf); credit that fits the
//! breach; deregistration that keeps what is owed.

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
    let r = graphql_as(&crate::http::client(), &base, &admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 1814400}) { now } }"})).await;
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

// --- Revocation as a procedure (finding 1), over the real binary with mail at a real SMTP server.

mod procedure {
    use sea_orm::{ConnectionTrait, Statement};
    use serde_json::{json, Value};

    use crate::http::{advance_clock_to, graphql_as, issue_licence, mails_eventually, open_case, token_as, Demo};

    const FOOD_APPLICANT: &str = "91310110666007217T";
    const APPLICANT_MAIL: &str = "contact0@applicant.demo.pledgeflow.localhost";
    const FOOD_DEPARTMENT_MAIL: &str = "310101-scjg@demo.pledgeflow.localhost";

    /// A food business case with the health certificates (M02) deferred three working days.
    fn food_deferral() -> Value {
        open_case(json!({"applicantUscc": FOOD_APPLICANT, "itemCode": "310101-FOOD-01", "mode": "DEFERRAL", "deferralWorkingDays": 3, "signedBy": "张伟",
            "materials": [{"code": "M01", "status": "PROVIDED", "fileRef": "DOC-1"}, {"code": "M02", "status": "DEFERRED"}, {"code": "M03", "status": "PROVIDED", "fileRef": "DOC-3"}]}))
    }

    fn opened(r: &Value) -> String {
        r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
    }

    /// The case's state, events and pending timers (name → due).
    async fn look(d: &Demo, token: &str, id: &str) -> (String, Vec<String>, Vec<(String, String)>) {
        let q = json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state history { event } timers { name dueAt status } } }", "variables": {"id": id}});
        let r = graphql_as(&d.http, &d.base, token, q).await;
        let i = &r["data"]["workflowInstance"];
        let state = i["state"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        let events = i["history"].as_array().unwrap().iter().map(|h| h["event"].as_str().unwrap().to_string()).collect();
        let timers = i["timers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["status"] == "PENDING" || t["status"] == "pending")
            .map(|t| (t["name"].as_str().unwrap().to_string(), t["dueAt"].as_str().unwrap().to_string()))
            .collect();
        (state, events, timers)
    }

    fn due(timers: &[(String, String)], name: &str) -> String {
        timers.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no pending timer {name}: {timers:?}")).1.clone()
    }

    /// Moves the server's clock to `to` (its timers fire, its outbox is delivered).
    async fn move_to(d: &Demo, to: &str) {
        let r = graphql_as(&d.http, &d.base, &d.admin, advance_clock_to(json!(to))).await;
        assert!(r.get("errors").is_none(), "{r}");
    }

    async fn credit_records(d: &Demo, id: &str) -> Vec<String> {
        let db = pledgeflow::store::connect(&d.url, 1).await.unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), format!("SELECT kind FROM credit_records WHERE instance_id = '{id}' ORDER BY created_at")))
            .await
            .unwrap();
        rows.iter().map(|r| r.try_get::<String>("", "kind").unwrap()).collect()
    }

    fn subjects_to(d: &Demo, to: &str, from: usize) -> Vec<String> {
        d.smtp.received()[from..]
            .iter()
            .filter(|m| m.to == [to.to_string()])
            .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).and_then(|p| p.subject().map(str::to_string)))
            .collect()
    }

    fn state_case(id: &str, statement: &str) -> Value {
        json!({"query": "mutation($id: ID!, $s: String!) { stateCase(input: {caseId: $id, statement: $s}) { case { state } } }", "variables": {"id": id, "s": statement}})
    }

    fn decide(id: &str, decision: &str, reason: &str) -> Value {
        json!({"query": "mutation($id: ID!, $d: RevocationDecision!, $r: String!) { decideRevocation(input: {caseId: $id, decision: $d, reason: $r}) { case { state } } }",
            "variables": {"id": id, "d": decision, "r": reason}})
    }

    fn state_of(r: &Value, act: &str) -> String {
        r["data"][act]["case"]["state"].as_str().unwrap_or_else(|| panic!("{r}")).to_string()
    }

    /// Runs a deferral case out: the notice of intended ending goes to the enterprise and the
    /// department, with the period to state its case; nothing is recorded against it yet.
    async fn run_out(d: &Demo) -> String {
        let id = opened(&graphql_as(&d.http, &d.base, &d.window, food_deferral()).await);
        let (_, _, timers) = look(d, &d.window, &id).await;
        let before = d.smtp.received().len();
        move_to(d, &due(&timers, "expiry")).await;
        let (state, _, timers) = look(d, &d.window, &id).await;
        assert_eq!(state, "breach_noticed");
        assert!(timers.iter().any(|(n, _)| n == "response_limit"), "{timers:?}");
        let noticed = |all: &[crate::smtp::Received]| {
            [APPLICANT_MAIL, FOOD_DEPARTMENT_MAIL].iter().filter(|to| all[before..].iter().any(|m| m.to == [to.to_string()])).count()
        };
        mails_eventually(&d.smtp, 2, noticed).await;
        assert!(subjects_to(d, APPLICANT_MAIL, before).iter().any(|s| s.contains("告知书")), "{:?}", subjects_to(d, APPLICANT_MAIL, before));
        assert!(credit_records(d, &id).await.is_empty(), "nothing recorded before the enterprise is heard");
        id
    }

    fn applicant_token(d: &Demo) -> String {
        token_as(&d.url, FOOD_APPLICANT, &["--role", "applicant", "--uscc", FOOD_APPLICANT])
    }

    #[tokio::test]
    async fn a_breach_heard_and_given_grace_ends_with_the_licence_and_no_record() {
        let d = Demo::start().await;
        let id = run_out(&d).await;
        // The enterprise states its case itself; the department grants the grace period.
        // A statement may run over lines; it may not carry control characters, nor be empty.
        let r = graphql_as(&d.http, &d.base, &applicant_token(&d), state_case(&id, "  ")).await;
        assert_eq!((&r["errors"][0]["extensions"]["code"], &r["errors"][0]["extensions"]["field"]), (&json!("BAD_USER_INPUT"), &json!("statement")), "{r}");
        let r = graphql_as(&d.http, &d.base, &applicant_token(&d), state_case(&id, "体检延迟\u{7}")).await;
        assert_eq!((&r["errors"][0]["extensions"]["code"], &r["errors"][0]["extensions"]["field"]), (&json!("BAD_USER_INPUT"), &json!("statement")), "{r}");
        let r = graphql_as(&d.http, &d.base, &applicant_token(&d), state_case(&id, "健康证明体检机构延迟出具，\n已附预约凭证")).await;
        assert_eq!(state_of(&r, "stateCase"), "breach_before_department");
        let r = graphql_as(&d.http, &d.base, &d.window, decide(&id, "GRACE", "窗口无权决定")).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
        let r = graphql_as(&d.http, &d.base, &d.approver, decide(&id, "ACCEPT_STATEMENT", "尚无许可")).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID_TRANSITION", "no licence to let stand: {r}");
        let r = graphql_as(&d.http, &d.base, &d.approver, decide(&id, "GRACE", "体检机构原因，给予宽限期")).await;
        assert_eq!(state_of(&r, "decideRevocation"), "awaiting_materials", "the materials' deadline moved, reminded again");
        let (_, _, timers) = look(&d, &d.window, &id).await;
        assert!(timers.iter().any(|(n, _)| n == "reminder") && timers.iter().any(|(n, _)| n == "expiry"), "{timers:?}");
        // The certificates arrive in the grace period: reviewed and licensed as any other case.
        let submit = json!({"query": "mutation($id: ID!) { submitMaterial(input: {caseId: $id, code: \"M02\", fileRef: \"DOC-2\"}) { case { state } } }", "variables": {"id": id}});
        let r = graphql_as(&d.http, &d.base, &d.window, submit).await;
        assert_eq!(r["data"]["submitMaterial"]["case"]["state"], "under_review", "{r}");
        let r = graphql_as(&d.http, &d.base, &d.approver, issue_licence(&id)).await;
        assert_eq!(r["data"]["issueLicence"]["case"]["state"], "licensed", "{r}");
        assert!(credit_records(&d, &id).await.is_empty(), "kept after grace: no breach recorded");
        let (_, events, _) = look(&d, &d.window, &id).await;
        assert_eq!(events, ["start", "remind", "expire", "statement", "decide_grace", "materials_complete", "approve"]);
    }

    #[tokio::test]
    async fn a_statement_the_department_rejects_ends_the_application_with_one_breach_record() {
        let d = Demo::start().await;
        let id = run_out(&d).await;
        let r = graphql_as(&d.http, &d.base, &d.window, state_case(&id, "申请人到窗口口头陈述，窗口代为记录：材料正在办理")).await;
        assert_eq!(state_of(&r, "stateCase"), "breach_before_department");
        let r = graphql_as(&d.http, &d.base, &d.approver, decide(&id, "REVOKE", "陈述理由不成立，逾期未补齐材料")).await;
        assert_eq!(state_of(&r, "decideRevocation"), "revoked");
        assert_eq!(credit_records(&d, &id).await, ["breach"], "one record for the one breach");
        // Of the rules' category (a breach: general), published six months, repairable after three.
        let q = json!({"query": "query($u: String!) { creditRecords(uscc: $u) { caseId category createdAt publishUntil repairableFrom } }", "variables": {"u": FOOD_APPLICANT}});
        let r = graphql_as(&d.http, &d.base, &d.supervisor, q).await;
        let record = r["data"]["creditRecords"].as_array().unwrap().iter().find(|c| c["caseId"] == id.as_str()).cloned().unwrap_or_else(|| panic!("{r}"));
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(record[k].as_str().unwrap()).unwrap();
        assert_eq!(record["category"], "general", "{record}");
        assert!((181..=184).contains(&(at("publishUntil") - at("createdAt")).num_days()), "{record}");
        assert!((89..=92).contains(&(at("repairableFrom") - at("createdAt")).num_days()), "{record}");
        let (_, events, timers) = look(&d, &d.window, &id).await;
        assert_eq!(events, ["start", "remind", "expire", "statement", "decide_revoke"]);
        assert!(timers.is_empty(), "{timers:?}");
    }

    #[tokio::test]
    async fn silence_until_the_period_ends_revokes_on_the_departments_behalf_and_tells_it() {
        let d = Demo::start().await;
        let id = run_out(&d).await;
        let (_, _, timers) = look(&d, &d.window, &id).await;
        let before = d.smtp.received().len();
        move_to(&d, &due(&timers, "response_limit")).await;
        let (state, events, _) = look(&d, &d.window, &id).await;
        assert_eq!(state, "revoked");
        assert_eq!(events, ["start", "remind", "expire", "response_lapsed"], "the timeline says the system decided at the period's end");
        assert_eq!(credit_records(&d, &id).await, ["breach"]);
        let told = |all: &[crate::smtp::Received]| all[before..].iter().filter(|m| m.to == [FOOD_DEPARTMENT_MAIL.to_string()]).count();
        mails_eventually(&d.smtp, 1, told).await;
        assert!(subjects_to(&d, FOOD_DEPARTMENT_MAIL, before).iter().any(|s| s.contains("代审批部门")), "{:?}", subjects_to(&d, FOOD_DEPARTMENT_MAIL, before));
    }

    /// The public-hygiene item wants its department's decision in every case: silence changes
    /// nothing but whose turn it is; a department that lets its own limit pass is escalated to
    /// the region's supervisors and counted against it.
    #[tokio::test]
    async fn an_item_for_the_departments_decision_waits_for_it_and_a_late_decision_is_escalated() {
        let d = Demo::start().await;
        let window = token_as(&d.url, "window-02", &["--role", "window", "--department", "310101-WJW"]);
        let approver = token_as(&d.url, "approver-02", &["--role", "approver", "--department", "310101-WJW"]);
        let open = open_case(json!({"applicantUscc": FOOD_APPLICANT, "itemCode": "310101-HYG-01", "mode": "DEFERRAL", "deferralWorkingDays": 5, "signedBy": "张伟",
            "materials": [{"code": "M01", "status": "PROVIDED", "fileRef": "DOC-1"}, {"code": "M02", "status": "DEFERRED"}, {"code": "M03", "status": "PROVIDED", "fileRef": "DOC-3"}]}));
        let id = opened(&graphql_as(&d.http, &d.base, &window, open).await);
        let (_, _, timers) = look(&d, &window, &id).await;
        move_to(&d, &due(&timers, "expiry")).await;
        let (_, _, timers) = look(&d, &window, &id).await;
        move_to(&d, &due(&timers, "response_limit")).await;
        let (state, _, timers) = look(&d, &window, &id).await;
        assert_eq!(state, "breach_before_department", "silence does not decide here");
        assert!(credit_records(&d, &id).await.is_empty());
        let before = d.smtp.received().len();
        move_to(&d, &due(&timers, "decision_limit")).await;
        let (state, events, _) = look(&d, &window, &id).await;
        assert_eq!((state.as_str(), events.last().map(String::as_str)), ("breach_before_department", Some("decision_lapsed")));
        let supervisors = |all: &[crate::smtp::Received]| {
            all[before..]
                .iter()
                .filter_map(|m| mail_parser::MessageParser::default().parse(&m.data).and_then(|p| p.subject().map(str::to_string)))
                .filter(|s| s.contains("撤销决定超过办理时限"))
                .count()
        };
        assert!(mails_eventually(&d.smtp, 1, supervisors).await >= 1, "the supervisors hear of it");
        let db = pledgeflow::store::connect(&d.url, 1).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), format!("SELECT department FROM sla_breaches WHERE instance_id = '{id}' AND limit_kind = 'revocation_decision'")))
            .await
            .unwrap()
            .expect("the missed limit is recorded");
        assert_eq!(row.try_get::<String>("", "department").unwrap(), "310101-WJW");
        let r = graphql_as(&d.http, &d.base, &approver, decide(&id, "REVOKE", "逾期未补齐卫生检测报告")).await;
        assert_eq!(state_of(&r, "decideRevocation"), "revoked");
        assert_eq!(credit_records(&d, &id).await, ["breach"]);
    }
}

// --- Credit that fits (finding 2), over the real binary.

mod credit {
    use serde_json::{json, Value};

    use crate::http::{graphql_as, open_case, Demo};

    const USCC: &str = "91310110666007217T";

    fn records() -> Value {
        json!({"query": "query($u: String!) { applicant(uscc: $u) { creditTier dishonest } creditRecords(uscc: $u) { id kind category caseId publishUntil repairableFrom repairedAt } }", "variables": {"u": USCC}})
    }

    fn repair(id: &Value) -> Value {
        json!({"query": "mutation($i: RepairCreditInput!) { repairCredit(input: $i) { applicant { dishonest } repair { kind } } }",
            "variables": {"i": {"recordId": id, "reason": "信用修复决定书 黄市监信修〔2027〕1号"}}})
    }

    fn list() -> Value {
        json!({"query": "mutation($u: String!) { listDishonest(input: {uscc: $u, basis: \"《严重失信主体名单管理办法》第八条\", reason: \"黄市监信〔2026〕3号\"}) { applicant { dishonest } listing { kind category } } }",
            "variables": {"u": USCC}})
    }

    /// The demo's revocation of this applicant is one general record: tier C at worst, never the
    /// dishonesty list; it cannot be repaired before three months; the list is entered only by the
    /// region's supervisor's decision, which closes the commitment route until it is lifted.
    #[tokio::test]
    async fn one_general_record_never_lists_repair_waits_for_the_minimum_and_only_a_supervisor_lists() {
        let d = Demo::start().await;
        let r = graphql_as(&d.http, &d.base, &d.supervisor, records()).await;
        assert_eq!(r["data"]["applicant"]["dishonest"], false, "records never list: {r}");
        let revocation = r["data"]["creditRecords"].as_array().unwrap().iter().find(|c| c["kind"] == "revocation").cloned().unwrap_or_else(|| panic!("{r}"));
        assert_eq!(revocation["category"], "general");
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(revocation[k].as_str().unwrap()).unwrap();
        assert!((89..=93).contains(&(at("publishUntil") - at("repairableFrom")).num_days()), "published six months, repairable after three: {revocation}");

        let r = graphql_as(&d.http, &d.base, &d.supervisor, repair(&revocation["id"])).await;
        assert_eq!((&r["errors"][0]["extensions"]["code"], &r["errors"][0]["extensions"]["reason"]), (&json!("BAD_USER_INPUT"), &json!("REPAIR_TOO_EARLY")), "{r}");

        // Listing is a decision of the region's supervisor, not the window's nor the admin's.
        for who in [&d.window, &d.admin] {
            let r = graphql_as(&d.http, &d.base, who, list()).await;
            assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
        }
        let r = graphql_as(&d.http, &d.base, &d.supervisor, list()).await;
        assert_eq!(r["data"]["listDishonest"], json!({"applicant": {"dishonest": true}, "listing": {"kind": "listing", "category": "serious"}}), "{r}");
        let r = graphql_as(&d.http, &d.base, &d.supervisor, list()).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "CONFLICT", "listed once: {r}");
        let after_the_fact = open_case(json!({"applicantUscc": USCC, "itemCode": "310101-FOOD-01", "mode": "AFTER_THE_FACT", "signedBy": "张伟",
            "materials": [{"code": "M01", "status": "PROVIDED", "fileRef": "D1"}, {"code": "M02", "status": "PROVIDED", "fileRef": "D2"}, {"code": "M03", "status": "PROVIDED", "fileRef": "D3"}]}));
        let r = graphql_as(&d.http, &d.base, &d.window, after_the_fact.clone()).await;
        assert_eq!(r["errors"][0]["extensions"]["reason"], "CREDIT_BARRED", "{r}");

        // A year on (the serious minimum): the listing is lifted by its repair, the revocation
        // repaired too; the commitment route opens again.
        let r = graphql_as(&d.http, &d.base, &d.admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 31708800}) { now } }"})).await;
        assert!(r.get("errors").is_none(), "{r}");
        let r = graphql_as(&d.http, &d.base, &d.supervisor, records()).await;
        let listing = r["data"]["creditRecords"].as_array().unwrap().iter().find(|c| c["kind"] == "listing").unwrap()["id"].clone();
        let r = graphql_as(&d.http, &d.base, &d.supervisor, repair(&listing)).await;
        assert_eq!(r["data"]["repairCredit"]["applicant"]["dishonest"], false, "{r}");
        let r = graphql_as(&d.http, &d.base, &d.window, after_the_fact).await;
        assert!(r["data"]["openCase"]["case"]["id"].is_string(), "{r}");
    }
}

// --- Deregistration keeps what is owed (finding 3), over the real binary.

mod deregistration {
    use sea_orm::{ConnectionTrait, Statement};
    use serde_json::{json, Value};

    use crate::http::{assign, feed_back, findings, food_after_the_fact, graphql_as, inspection, issue_licence, office_today, Demo, HEALTH};

    const USCC: &str = "91310110666007217T";

    async fn licensed_case(d: &Demo) -> (String, String) {
        let r = graphql_as(&d.http, &d.base, &d.window, food_after_the_fact(USCC, "张伟")).await;
        let case = r["data"]["openCase"]["case"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        graphql_as(&d.http, &d.base, &d.approver, issue_licence(&case)).await;
        let tasks = json!({"query": "query($p: ID!) { workflowInstances(filter: {definition: \"supervision-task\", parentId: $p}) { edges { node { id } } } }", "variables": {"p": case}});
        let r = graphql_as(&d.http, &d.base, &d.division, tasks).await;
        let task = r["data"]["workflowInstances"]["edges"][0]["node"]["id"].as_str().unwrap_or_else(|| panic!("{r}")).to_string();
        (case, task)
    }

    async fn records(d: &Demo, id: &str) -> Vec<String> {
        let db = pledgeflow::store::connect(&d.url, 1).await.unwrap();
        let sql = format!("SELECT kind FROM credit_records WHERE instance_id = '{id}' ORDER BY created_at");
        db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().iter().map(|r| r.try_get::<String>("", "kind").unwrap()).collect()
    }

    async fn state(d: &Demo, id: &str) -> Value {
        let db = pledgeflow::store::connect(&d.url, 1).await.unwrap();
        let sql = format!("SELECT state FROM workflow_instances WHERE id = '{id}'");
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        json!(row.try_get::<String>("", "state").unwrap())
    }

    /// A case before its revocation decision and a case whose task is in rectification keep their
    /// breach when the business licence is deregistered; a case with nothing outstanding ends
    /// without one.
    #[tokio::test]
    async fn a_deregistered_enterprise_keeps_the_breach_it_owes_and_only_that() {
        let d = Demo::start().await;
        // Owed: a revocation noticed.
        let (noticed, _) = licensed_case(&d).await;
        let revoke = json!({"query": "mutation($id: ID!) { fireEvent(input: {instanceId: $id, event: \"revoke\", payload: {reason: \"现场核查不符合许可条件\"}}) { instance { state } } }", "variables": {"id": noticed}});
        let r = graphql_as(&d.http, &d.base, &d.approver, revoke).await;
        assert_eq!(r["data"]["fireEvent"]["instance"]["state"], "revocation_noticed", "{r}");
        // Owed: rectification ordered and running.
        let (rectifying, task) = licensed_case(&d).await;
        let today = office_today(&d).await;
        for (who, body) in [
            (&d.division, assign(&task, &["inspector-sp-1"])),
            (&d.inspector, inspection("recordInspection", &task, &today, findings(&[HEALTH]))),
            (&d.inspector, feed_back(&task, Some("限期补办从业人员健康证明"))),
        ] {
            let r = graphql_as(&d.http, &d.base, who, body).await;
            assert!(r.get("errors").is_none(), "{r}");
        }
        assert_eq!(state(&d, &task).await, "rectifying");
        // Nothing outstanding: licensed, its task just notified.
        let (clean, clean_task) = licensed_case(&d).await;

        let dereg = json!({"query": "mutation($i: DeregisterBusinessLicenceInput!) { deregisterBusinessLicence(input: $i) { ended } }",
            "variables": {"i": {"uscc": USCC, "reason": "企业申请注销登记"}}});
        let r = graphql_as(&d.http, &d.base, &d.approver, dereg).await;
        assert!(r.get("errors").is_none(), "{r}");
        graphql_as(&d.http, &d.base, &d.admin, json!({"query": "mutation { advanceClock(input: {bySeconds: 0}) { messagesDelivered } }"})).await;
        for case in [&noticed, &rectifying, &clean] {
            assert_eq!(state(&d, case).await, "deregistered", "{case}");
        }
        assert_eq!(records(&d, &noticed).await, ["revocation"], "the intended revocation's record stands, the deregistration noted");
        // The case's end reaches its task through the outbox.
        for _ in 0..100 {
            if state(&d, &task).await == "cancelled" && state(&d, &clean_task).await == "cancelled" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!((state(&d, &task).await, state(&d, &clean_task).await), (json!("cancelled"), json!("cancelled")));
        assert_eq!(records(&d, &task).await, ["breach"], "the rectification's breach stands");
        assert!(records(&d, &clean).await.is_empty() && records(&d, &clean_task).await.is_empty(), "nothing owed, nothing recorded");
    }
}
