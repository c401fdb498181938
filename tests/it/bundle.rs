//! 一照通行 (issue #9): one application for a business licence and the operating licences under
//! it — children in the declared order and in parallel otherwise, one form, one limit, the
//! licences shown under the business licence's code, and linked deregistration.

use std::process::Command;

use pledgeflow::auth::Claims;
use pledgeflow::clock::ManualClock;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use pledgeflow::window::registry::ElectronicLicence;
use pledgeflow::workflow::Actor;

use crate::helpers::{backends, bin, engine, monday_morning, repo, workflows_dir, Api};
use crate::http::{graphql, graphql_as, start, token_as};

const FOOD: &str = "310101-FOOD-01";
const HYGIENE: &str = "310101-HYG-01";
const RETAIL: &str = "310101-YPLS-01";

const BUNDLE: &str = "bundle { id state applicantUscc dueAt limitWorkingDays \
    children { position kind itemCode department mode status note instanceId state outcome licenceNumber ended } \
    holdingUp { itemCode kind } }";

fn provided(code: &str) -> Value {
    json!({"code": code, "status": "PROVIDED", "fileRef": format!("F-{code}")})
}

fn fields(skip: &str) -> Value {
    let all = [
        ("premises_address", "上海市黄浦区测试路 9 号"),
        ("business_scope", "餐饮服务；药品零售"),
        ("registered_capital", "100"),
        ("business_area", "150"),
        ("food_safety_manager", "沈一"),
        ("hygiene_manager", "沈一"),
        ("pharmacist", "顾二"),
    ];
    json!(all.iter().filter(|(c, _)| *c != skip).map(|(c, v)| json!({"code": c, "value": v})).collect::<Vec<_>>())
}

/// An enterprise being established: business licence, food business on deferral (M02 owed in
/// `days` working days), public-place hygiene decided on the spot, pharmacy retail verified.
fn application(resident_id: &str, days: i64, skip_field: &str) -> Value {
    json!({
        "establishment": {"reservedName": "上海测试小馆有限公司", "legalRepresentative": "沈一", "legalRepresentativeId": resident_id,
                          "registrationDepartment": "310101-SCJG", "email": "shen@applicant.test", "mobile": "13900000001"},
        "items": [
            {"itemCode": FOOD, "mode": "DEFERRAL", "deferralWorkingDays": days, "materials": [{"code": "M02", "status": "DEFERRED"}, provided("M03")]},
            {"itemCode": HYGIENE, "mode": "AFTER_THE_FACT", "materials": [provided("M02"), provided("M03")]},
            {"itemCode": RETAIL, "mode": "VERIFICATION", "materials": [provided("M02")]},
        ],
        "fields": fields(skip_field),
        "signedBy": "沈一",
    })
}

fn open_bundle(input: Value) -> Value {
    json!({"query": format!("mutation($i: OpenBundleInput!) {{ openBundle(input: $i) {{ {BUNDLE} }} }}"), "variables": {"i": input}})
}

fn get_bundle(id: &str) -> Value {
    json!({"query": format!("query($id: ID!) {{ {BUNDLE} }}").replace("bundle {", "bundle(id: $id) {"), "variables": {"id": id}})
}

fn child<'a>(bundle: &'a Value, item: Option<&str>) -> &'a Value {
    bundle["children"].as_array().unwrap().iter().find(|c| c["itemCode"].as_str() == item).unwrap_or_else(|| panic!("no child {item:?} in {bundle}"))
}

fn history(id: &str) -> Value {
    json!({"query": "query($id: ID!) { workflowInstance(id: $id) { state history { event actor } } }", "variables": {"id": id}})
}

fn events(r: &Value) -> Vec<String> {
    r["data"]["workflowInstance"]["history"].as_array().unwrap_or_else(|| panic!("{r}")).iter().map(|h| h["event"].as_str().unwrap().to_string()).collect()
}

fn no_errors(r: &Value) {
    assert!(r.get("errors").is_none(), "{r}");
}

fn advance(seconds: i64) -> Value {
    json!({"query": format!("mutation {{ advanceClock(input: {{bySeconds: {seconds}}}) {{ now timersFired messagesDelivered }} }}")})
}

/// Through the real binary: the operating licences wait for the business licence, then run in
/// parallel at two departments; the limit about to pass escalates only the child still pending;
/// the food deferral runs out and revokes only that child; the bundle completes with its
/// summary; the public licence query lists the other two under the new code.
#[tokio::test]
async fn a_bundle_waits_for_the_business_licence_runs_in_parallel_and_completes_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, base, url) = start(dir.path(), &[("PLEDGEFLOW_CLOCK", "manual")]).await;
    let http = crate::http::client();
    let staff = |subject: &str, role: &str, department: &str| token_as(&url, subject, &["--role", role, "--department", department]);
    let window = staff("window-00", "window", "310101-ZWZX");
    let market = staff("approver-01", "approver", "310101-SCJG");
    let health = staff("approver-02", "approver", "310101-WJW");
    let admin = token_as(&url, "admin-01", &["--role", "regional_admin", "--region", "310101"]);
    // Let the demo's own signals settle first.
    no_errors(&graphql_as(&http, &base, &admin, advance(0)).await);

    // One form: the union of the items' fields and the registration's, each code asked once.
    let r = graphql_as(&http, &base, &window, json!({"query": format!("{{ bundleForm(itemCodes: [\"{FOOD}\", \"{HYGIENE}\", \"{RETAIL}\"], establishment: true) {{ code items }} }}")})).await;
    no_errors(&r);
    let form = r["data"]["bundleForm"].as_array().unwrap();
    let codes: Vec<&str> = form.iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["premises_address", "business_scope", "registered_capital", "business_area", "food_safety_manager", "hygiene_manager", "pharmacist"]);
    assert_eq!(form[0]["items"], json!(["BUSINESS_LICENCE", FOOD, HYGIENE, RETAIL]), "asked once for all four");

    // Bad input changes nothing: a field left out, a resident ID with a wrong check character.
    let r = graphql_as(&http, &base, &window, open_bundle(application("31010119900701003X", 5, "pharmacist"))).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{r}");
    assert_eq!(r["errors"][0]["extensions"]["field"], "fields", "{r}");
    let r = graphql_as(&http, &base, &window, open_bundle(application("310101199007010032", 5, ""))).await;
    assert_eq!(r["errors"][0]["extensions"]["field"], "legalRepresentativeId", "{r}");
    let r = graphql_as(&http, &base, &window, json!({"query": "{ workflowInstances(filter: {definition: \"bundle\"}) { totalCount } }"})).await;
    assert_eq!(r["data"]["workflowInstances"]["totalCount"], 1, "only the demo's bundle: {r}");

    // Taken: the business licence starts, the operating licences wait for it.
    let r = graphql_as(&http, &base, &window, open_bundle(application("31010119900701003X", 5, ""))).await;
    no_errors(&r);
    let b = &r["data"]["openBundle"]["bundle"];
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["state"], "running");
    assert_eq!(b["applicantUscc"], Value::Null, "no code before the registration");
    assert_eq!(b["limitWorkingDays"], 3, "the pharmacy's limit is the longest");
    let registration = child(b, None);
    assert_eq!((registration["status"].as_str(), registration["outcome"].as_str()), (Some("STARTED"), Some("pending")));
    for item in [FOOD, HYGIENE, RETAIL] {
        assert_eq!(child(b, Some(item))["status"], "WAITING", "{b}");
    }
    assert_eq!(b["holdingUp"].as_array().unwrap().len(), 4);
    assert_eq!(child(b, Some(HYGIENE))["department"], "310101-WJW", "routed to the item's department");

    // The business licence is approved: the code is assigned, the three start together.
    let registration_id = registration["instanceId"].as_str().unwrap();
    let r = graphql_as(&http, &base, &market, json!({"query": "mutation($id: ID!) { registerEnterprise(input: {registrationId: $id}) { uscc registration { state } } }", "variables": {"id": registration_id}})).await;
    no_errors(&r);
    let uscc = r["data"]["registerEnterprise"]["uscc"].as_str().unwrap().to_string();
    assert_eq!(pledgeflow::domain::ids::uscc(&uscc).as_deref(), Ok(uscc.as_str()), "a valid code");
    no_errors(&graphql_as(&http, &base, &admin, advance(0)).await);
    let r = graphql_as(&http, &base, &window, get_bundle(&id)).await;
    no_errors(&r);
    let b = &r["data"]["bundle"];
    assert_eq!(b["applicantUscc"], uscc.as_str());
    assert_eq!(child(b, None)["outcome"], "registered");
    assert_eq!(child(b, None)["licenceNumber"], uscc.as_str());
    assert_eq!(child(b, Some(FOOD))["state"], "awaiting_materials", "{b}");
    assert_eq!(child(b, Some(HYGIENE))["state"], "intake");
    assert_eq!(child(b, Some(RETAIL))["state"], "under_review", "the bundle's business licence stands for M01");
    let case = |item: &str| child(b, Some(item))["instanceId"].as_str().unwrap().to_string();
    let (food, hygiene, retail) = (case(FOOD), case(HYGIENE), case(RETAIL));

    // Two departments decide in parallel; the bundle waits only for the food business.
    let issue = json!({"query": "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }"});
    let with = |id: &str| { let mut q = issue.clone(); q["variables"] = json!({"id": id}); q };
    let r = graphql_as(&http, &base, &health, with(&hygiene)).await;
    no_errors(&r);
    let hygiene_number = r["data"]["issueLicence"]["licenceNumber"].as_str().unwrap().to_string();
    let r = graphql_as(&http, &base, &market, with(&retail)).await;
    no_errors(&r);
    let retail_number = r["data"]["issueLicence"]["licenceNumber"].as_str().unwrap().to_string();
    no_errors(&graphql_as(&http, &base, &admin, advance(0)).await);
    let r = graphql_as(&http, &base, &window, get_bundle(&id)).await;
    let b = &r["data"]["bundle"];
    assert_eq!(b["state"], "running");
    assert_eq!(b["holdingUp"], json!([{"itemCode": FOOD, "kind": "operating_licence"}]), "{b}");

    // Two hours before the bundle's limit, the child still pending is escalated, and only it.
    let due: chrono::DateTime<chrono::Utc> = b["dueAt"].as_str().unwrap().parse().unwrap();
    let r = graphql_as(&http, &base, &admin, json!({"query": "{ serverClock { now } }"})).await;
    let now: chrono::DateTime<chrono::Utc> = r["data"]["serverClock"]["now"].as_str().unwrap().parse().unwrap();
    let r = graphql_as(&http, &base, &admin, advance((due - now).num_seconds() - 3600)).await;
    no_errors(&r);
    let r = graphql_as(&http, &base, &market, history(&food)).await;
    assert!(events(&r).contains(&"bundle_limit_near".to_string()), "{r}");
    let r = graphql_as(&http, &base, &market, history(&retail)).await;
    assert!(!events(&r).contains(&"bundle_limit_near".to_string()), "a licensed child is not escalated: {r}");

    // The food deferral runs out, the enterprise silent through the notice's period: that child
    // alone is revoked, and the bundle completes.
    no_errors(&graphql_as(&http, &base, &admin, advance(10 * 86_400)).await);
    let r = graphql_as(&http, &base, &admin, advance(10 * 86_400)).await;
    no_errors(&r);
    let r = graphql_as(&http, &base, &window, get_bundle(&id)).await;
    let b = &r["data"]["bundle"];
    assert_eq!(b["state"], "completed", "{b}");
    let summary: Vec<(Value, Value, Value)> = b["children"].as_array().unwrap().iter().map(|c| (c["itemCode"].clone(), c["outcome"].clone(), c["licenceNumber"].clone())).collect();
    assert_eq!(
        summary,
        [
            (Value::Null, json!("registered"), json!(uscc)),
            (json!(FOOD), json!("revoked"), Value::Null),
            (json!(HYGIENE), json!("licensed"), json!(hygiene_number)),
            (json!(RETAIL), json!("licensed"), json!(retail_number)),
        ]
    );
    assert_eq!(b["holdingUp"], json!([]));
    for (case, state) in [(&hygiene, "licensed"), (&retail, "licensed")] {
        let token = if case == &hygiene { &health } else { &market };
        let r = graphql_as(&http, &base, token, history(case)).await;
        assert_eq!(r["data"]["workflowInstance"]["state"], state, "{r}");
    }

    // Scanning the business licence's code: the two valid licences, no personal data.
    let r = graphql(&http, &base, json!({"query": "query($u: String!) { enterpriseLicences(uscc: $u) { uscc name businessLicence licences { licenceNumber itemCode itemName issuer validFrom validUntil mayOperate commitmentStatus } } }", "variables": {"u": uscc}})).await;
    no_errors(&r);
    let holder = &r["data"]["enterpriseLicences"];
    assert_eq!(holder["businessLicence"], "VALID");
    let numbers: Vec<&str> = holder["licences"].as_array().unwrap().iter().map(|l| l["licenceNumber"].as_str().unwrap()).collect();
    assert_eq!(numbers, [hygiene_number.as_str(), retail_number.as_str()]);
    assert_eq!(holder["licences"][0]["issuer"], "黄浦区卫生健康委员会");
    assert_eq!(holder["licences"][0]["commitmentStatus"], "IN_FORCE");
    assert!(holder["licences"][0]["validUntil"].is_string(), "the hygiene licence has a term");
    let text = holder.to_string();
    assert!(!text.contains("沈一") && !text.contains("31010119900701003X") && !text.contains("1390000"), "no personal data: {text}");
}

/// The demo office on `db`, its outbox delivered; the service centre's window and the two
/// departments' approvers the bundle tests act as; the demo bundle (registered, its three
/// operating licences started).
struct DemoBundle {
    e: pledgeflow::runtime::Engine,
    api: Api,
    _data: tempfile::TempDir,
    window: Claims,
    market: Claims,
    health: Claims,
    id: String,
}

async fn demo_bundle(db: &crate::helpers::TestDb) -> DemoBundle {
    let clock = ManualClock::at(monday_morning());
    let e = engine(db, &clock).await;
    pledgeflow::demo::seed(&e).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let api = Api::new(e.clone(), data.path());
    api.outbox.deliver_due("t").await.unwrap();
    let window = staff("window-00", "window", "310101-ZWZX");
    let list = api.ok(&window, "{ workflowInstances(filter: {definition: \"bundle\"}) { edges { node { id } } } }", json!({})).await;
    let id = list["workflowInstances"]["edges"][0]["node"]["id"].as_str().unwrap().to_string();
    DemoBundle { e, api, _data: data, window, market: staff("approver-01", "approver", "310101-SCJG"), health: staff("approver-02", "approver", "310101-WJW"), id }
}

fn staff(sub: &str, role: &str, department: &str) -> Claims {
    let mut c = Claims::new(sub, vec![role.into()], chrono::Utc::now(), chrono::Duration::hours(1));
    c.region = Some("310101".into());
    c.department = Some(department.into());
    c
}

/// The supervision task a licensed case spawned.
async fn task_of(db: &sea_orm::DatabaseConnection, case: &str) -> pledgeflow::store::entities::instance::Model {
    pledgeflow::store::entities::instance::Entity::find()
        .filter(pledgeflow::store::entities::instance::Column::ParentId.eq(case.to_string()))
        .one(db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("case {case} has no supervision task"))
}

/// The rows of a query written with `?` placeholders, on either backend.
async fn rows(db: &sea_orm::DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Vec<sea_orm::QueryResult> {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = db.get_database_backend();
    let sql = if backend == sea_orm::DbBackend::Sqlite {
        sql.to_string()
    } else {
        sql.split('?').enumerate().map(|(i, part)| if i == 0 { part.to_string() } else { format!("${i}{part}") }).collect()
    };
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await.unwrap()
}

async fn snapshot(db: &sea_orm::DatabaseConnection, uscc: &str) -> Vec<(String, String, i64)> {
    let sql = "SELECT i.id, i.state, i.version FROM cases c JOIN workflow_instances i ON i.id = c.instance_id WHERE c.applicant_uscc = ? ORDER BY i.id";
    let rows = rows(db, sql, vec![uscc.into()]).await;
    rows.iter().map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "state").unwrap(), r.try_get("", "version").unwrap())).collect()
}

/// Deregistering the business licence ends the registration, every running case and active
/// licence of that enterprise in one step — as deregistered, no credit record — and nothing of
/// another enterprise's. A case closed with its commitment kept stays closed, and its licence
/// lapses with its own audit event and notices.
#[tokio::test]
async fn deregistering_a_bundles_business_licence_ends_everything_of_that_applicant_and_nothing_of_another() {
    for db in backends().await {
        let DemoBundle { e, api, _data, window, market, health, id } = demo_bundle(&db).await;

        // The demo's bundle: registered, its three operating licences started.
        let b = api.ok(&window, &get_bundle(&id)["query"].as_str().unwrap().to_string(), json!({"id": id})).await;
        let b = &b["bundle"];
        let uscc = b["applicantUscc"].as_str().unwrap().to_string();
        for c in b["children"].as_array().unwrap() {
            assert_eq!(c["status"], "STARTED", "{db_label}: {b}", db_label = db.label);
        }
        // One licence issued (its supervision task starts), one closed with its commitment
        // kept (its supervision task found it kept), one still under review.
        let issue = "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }";
        let food = child(b, Some(FOOD))["instanceId"].as_str().unwrap().to_string();
        api.ok(&market, issue, json!({"id": food})).await;
        let hygiene = child(b, Some(HYGIENE))["instanceId"].as_str().unwrap().to_string();
        api.ok(&health, issue, json!({"id": hygiene})).await;
        let task = task_of(&e.db, &hygiene).await.id;
        e.fire(&task, "accept", &Actor::person("wsjd-admin", "division_admin"), &json!({"inspectors": ["inspector-ws-1"]}), None).await.unwrap();
        e.fire(&task, "inspection_finished", &Actor::person("inspector-ws-1", "inspector"), &json!({"findings": "承诺事项均已履行"}), None).await.unwrap();
        e.fire(&task, "kept", &Actor::person("inspector-ws-1", "inspector"), &json!({}), None).await.unwrap();
        api.outbox.deliver_due("t").await.unwrap();
        let closed = pledgeflow::store::instances::load(&e.db, &hygiene).await.unwrap();
        assert_eq!(closed.state, "closed", "{}: the supervision loop closed the case", db.label);
        let other = "91310110666007217T";
        let others_before = snapshot(&e.db, other).await;
        assert!(!others_before.is_empty());
        // Every electronic licence of the holder stands on its business licence; another's does not.
        let licence = |holder: &str, number: &str| ElectronicLicence { holder_uscc: holder.into(), kind: "food_business".into(), number: number.into(), valid_until: "2030-12-31".into(), revoked: 0 };
        pledgeflow::window::registry::put_electronic_licence(&e.db, &licence(&uscc, "JY-DEREG-1")).await.unwrap();
        pledgeflow::window::registry::put_electronic_licence(&e.db, &licence(other, "JY-OTHER-1")).await.unwrap();

        // Only an approver; a bad code or no reason is refused and changes nothing.
        let mutation = "mutation($i: DeregisterBusinessLicenceInput!) { deregisterBusinessLicence(input: $i) { uscc ended lapsed notEnded { instanceId reason } } }";
        let r = api.call(Some(&window), mutation, json!({"i": {"uscc": uscc, "reason": "申请注销"}})).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "{r}");
        let r = api.call(Some(&market), mutation, json!({"i": {"uscc": "91310101MA00000000", "reason": "申请注销"}})).await;
        assert_eq!(r["errors"][0]["extensions"]["field"], "uscc", "{r}");
        let r = api.call(Some(&health), mutation, json!({"i": {"uscc": uscc, "reason": "申请注销"}})).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "FORBIDDEN", "another department did not register it: {r}");
        let r = api.call(Some(&market), mutation, json!({"i": {"uscc": uscc, "reason": " "}})).await;
        assert_eq!(r["errors"][0]["extensions"]["field"], "reason", "{r}");

        let credit_before = pledgeflow::store::credit::records(&e.db, &uscc).await.unwrap().len();
        let r = api.ok(&market, mutation, json!({"i": {"uscc": uscc, "reason": "企业申请注销登记"}})).await;
        let ended: Vec<String> = r["deregisterBusinessLicence"]["ended"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(ended.len(), 3, "the registration and the two running cases: {r}");
        assert!(!ended.contains(&hygiene), "{r}");
        assert_eq!(r["deregisterBusinessLicence"]["lapsed"], json!([hygiene]), "{r}");
        assert_eq!(r["deregisterBusinessLicence"]["notEnded"], json!([]));

        // The closed case stays closed (its commitment was kept), with exactly one event for its
        // licence lapsing, no timer armed, and its notices queued.
        let lapsed = pledgeflow::store::instances::load(&e.db, &hygiene).await.unwrap();
        assert_eq!((lapsed.state.as_str(), lapsed.version), ("closed", closed.version + 1), "{}", db.label);
        let history = e.history(&hygiene).await.unwrap();
        let last = history.last().unwrap();
        assert_eq!((last.event.as_str(), last.from_state.as_deref(), last.to_state.as_str()), ("deregister", Some("closed"), "closed"));
        assert_eq!(history.iter().filter(|h| h.event == "deregister").count(), 1, "exactly one audit event");
        let timers = pledgeflow::store::instances::timers(&e.db, &hygiene).await.unwrap();
        assert!(timers.iter().all(|t| t.status != "pending"), "{timers:?}");
        let lapse_notices = || {
            pledgeflow::store::entities::outbox::Entity::find()
                .filter(pledgeflow::store::entities::outbox::Column::Topic.eq("licence_deregistered"))
                .all(&e.db)
        };
        let queued = lapse_notices().await.unwrap();
        let mut recipients: Vec<(&str, &str)> = queued.iter().map(|n| (n.instance_id.as_str(), n.recipient.as_str())).collect();
        recipients.sort();
        assert_eq!(recipients, [(hygiene.as_str(), "applicant"), (hygiene.as_str(), "department")], "{}", db.label);

        // Every electronic licence of the holder is revoked, another holder's not.
        let licences = rows(&e.db, "SELECT holder_uscc, revoked FROM electronic_licences WHERE holder_uscc IN (?, ?)", vec![uscc.clone().into(), other.into()]).await;
        let licences: Vec<(String, i64)> = licences.iter().map(|r| (r.try_get("", "holder_uscc").unwrap(), r.try_get("", "revoked").unwrap())).collect();
        assert!(licences.iter().filter(|(h, _)| *h == uscc).count() >= 2, "the business licence and the food licence: {licences:?}");
        for (holder, revoked) in &licences {
            assert_eq!(*revoked, i64::from(*holder == uscc), "{}: {holder}", db.label);
        }
        for id in &ended {
            let inst = pledgeflow::store::instances::load(&e.db, id).await.unwrap();
            assert_eq!(inst.state, "deregistered", "{}", db.label);
            let history = e.history(id).await.unwrap();
            assert_eq!(history.iter().filter(|h| h.event == "deregister").count(), 1, "exactly one audit event");
        }
        assert_eq!(pledgeflow::store::credit::records(&e.db, &uscc).await.unwrap().len(), credit_before, "no breach, no credit record");
        assert_eq!(snapshot(&e.db, other).await, others_before, "{}: nothing of another applicant's", db.label);

        // After delivery: the licensed case's supervision task ends, the bundle completes, the
        // notices are out.
        api.outbox.deliver_due("t").await.unwrap();
        let b = api.ok(&window, &get_bundle(&id)["query"].as_str().unwrap().to_string(), json!({"id": id})).await;
        assert_eq!(b["bundle"]["state"], "completed", "{}", b);
        let outcomes: Vec<(Option<&str>, &str)> = b["bundle"]["children"].as_array().unwrap().iter().map(|c| (c["itemCode"].as_str(), c["outcome"].as_str().unwrap())).collect();
        // The hygiene case was closed (kept): its licence lapsed with the business licence.
        assert_eq!(outcomes, [(None, "deregistered"), (Some(FOOD), "deregistered"), (Some(HYGIENE), "deregistered"), (Some(RETAIL), "deregistered")]);
        assert_eq!(task_of(&e.db, &food).await.state, "cancelled");
        let notices = pledgeflow::store::entities::outbox::Entity::find()
            .filter(pledgeflow::store::entities::outbox::Column::Topic.eq("deregistered"))
            .all(&e.db)
            .await
            .unwrap();
        assert!(notices.len() >= ended.len(), "a notice for each ended instance: {}", notices.len());
        let delivered = lapse_notices().await.unwrap();
        assert!(delivered.iter().all(|n| n.status == "delivered"), "{}: {delivered:?}", db.label);

        // The public sees a deregistered business licence with nothing under it; no new case opens.
        let r = api.call(None, "query($u: String!) { enterpriseLicences(uscc: $u) { businessLicence licences { licenceNumber } } }", json!({"u": uscc})).await;
        assert_eq!(r["data"]["enterpriseLicences"], json!({"businessLicence": "DEREGISTERED", "licences": []}), "{r}");
        let again = api.call(Some(&market), mutation, json!({"i": {"uscc": uscc, "reason": "再次注销"}})).await;
        assert_eq!(again["errors"][0]["extensions"]["code"], "INVALID_TRANSITION", "{again}");
        let scjg_window = staff("window-01", "window", "310101-SCJG");
        let r = api
            .call(
                Some(&scjg_window),
                "mutation($i: OpenCaseInput!) { openCase(input: $i) { case { id } } }",
                json!({"i": {"applicantUscc": uscc, "itemCode": FOOD, "mode": "AFTER_THE_FACT", "signedBy": "许晴", "materials": [provided("M01"), provided("M02"), provided("M03")]}}),
            )
            .await;
        assert_eq!(r["errors"][0]["extensions"]["field"], "applicantUscc", "{r}");
        db.cleanup().await;
    }
}

/// Everything a refused act could have changed: each instance's state and version, and how
/// many audit events, returns and outbox rows there are.
async fn everything(db: &sea_orm::DatabaseConnection) -> (Vec<(String, String, i64)>, Vec<i64>) {
    let instances = rows(db, "SELECT id, state, version FROM workflow_instances ORDER BY id", vec![]).await;
    let instances = instances.iter().map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "state").unwrap(), r.try_get("", "version").unwrap())).collect();
    let mut counts = Vec::new();
    for table in ["workflow_events", "returns", "outbox", "statistics_rollup", "statistics_rollup_deltas"] {
        let n = rows(db, &format!("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM {table}"), vec![]).await;
        counts.push(n[0].try_get::<i64>("", "n").unwrap());
    }
    (instances, counts)
}

/// 退件 of an opened bundle child: its department returns it with `returnApplication(caseId…)`;
/// the case ends as returned with one audit event and the applicant's notice, the return is
/// counted (returns table, statistics) like one at intake, and the bundle completes with that
/// child's outcome `returned`. A refused return — another department, another item's code, a
/// case already decided, a registration, an approver at intake — changes nothing.
#[tokio::test]
async fn a_bundle_child_returned_by_its_department_ends_as_returned_and_the_bundle_completes() {
    for db in backends().await {
        let DemoBundle { e, api, _data, window, market, health, id } = demo_bundle(&db).await;
        let bundle_query = get_bundle("")["query"].as_str().unwrap().to_string();
        let b = api.ok(&window, &bundle_query, json!({"id": id})).await["bundle"].clone();
        let instance = |item: Option<&str>| child(&b, item)["instanceId"].as_str().unwrap().to_string();
        let (registration, food, hygiene, retail) = (instance(None), instance(Some(FOOD)), instance(Some(HYGIENE)), instance(Some(RETAIL)));
        let uscc = b["applicantUscc"].as_str().unwrap().to_string();
        let issue = "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }";
        let r = api.ok(&market, issue, json!({"id": food})).await;
        let food_number = r["issueLicence"]["licenceNumber"].as_str().unwrap().to_string();

        // Refused, each with its code, and nothing written.
        let ret = "mutation($i: ReturnApplicationInput!) { returnApplication(input: $i) { id } }";
        let returning = |case: &str, item: &str| json!({"caseId": case, "itemCode": item, "category": "APPLICANT_MATERIALS", "reason": "公共场所卫生许可申请材料与现场不符"});
        let with = |mut input: Value, key: &str, value: Value| {
            input[key] = value;
            json!({"i": input})
        };
        let before = everything(&e.db).await;
        let refused: Vec<(&Claims, Value, &str, Option<&str>)> = vec![
            // Another department's case is not found, whatever item its officer names.
            (&market, json!({"i": returning(&hygiene, FOOD)}), "NOT_FOUND", None),
            (&window, json!({"i": returning(&hygiene, HYGIENE)}), "NOT_FOUND", None),
            // The department's case under another department's item, or another of its own.
            (&market, json!({"i": returning(&retail, HYGIENE)}), "FORBIDDEN", None),
            (&market, json!({"i": returning(&retail, FOOD)}), "BAD_USER_INPUT", Some("itemCode")),
            (&health, with(returning(&hygiene, HYGIENE), "applicantUscc", json!("91310110666007217T")), "BAD_USER_INPUT", Some("applicantUscc")),
            (&health, with(returning(&hygiene, HYGIENE), "reason", json!(" ")), "BAD_USER_INPUT", Some("reason")),
            // Decided already: a licensed case is revoked or deregistered, never returned.
            (&market, json!({"i": returning(&food, FOOD)}), "INVALID_TRANSITION", None),
            // The registration is no case of the catalogue.
            (&market, json!({"i": returning(&registration, FOOD)}), "NOT_FOUND", None),
            // Without a case, a return at intake stays the window's.
            (&health, with(returning(&hygiene, HYGIENE), "caseId", Value::Null), "FORBIDDEN", None),
        ];
        for (who, vars, code, field) in refused {
            let r = api.call(Some(who), ret, vars.clone()).await;
            assert_eq!(r["errors"][0]["extensions"]["code"], code, "{}: {vars}: {r}", db.label);
            assert_eq!(r["errors"][0]["extensions"]["field"].as_str(), field, "{vars}: {r}");
        }
        assert_eq!(everything(&e.db).await, before, "{}: a refused return changed nothing", db.label);

        // The health office returns its child: one event, the applicant told, the return counted.
        let r = api.ok(&health, ret, json!({"i": returning(&hygiene, HYGIENE)})).await;
        let return_id = r["returnApplication"]["id"].as_str().unwrap().to_string();
        let returned = pledgeflow::store::instances::load(&e.db, &hygiene).await.unwrap();
        assert_eq!(returned.state, "returned", "{}", db.label);
        assert_eq!(returned.context["return"]["id"], return_id.as_str(), "the case names its return");
        let history = e.history(&hygiene).await.unwrap();
        assert_eq!(history.iter().filter(|h| h.event == "return").count(), 1, "exactly one audit event");
        let last = history.last().unwrap();
        assert_eq!((last.event.as_str(), last.from_state.as_deref(), last.to_state.as_str(), last.actor_subject.as_deref()), ("return", Some("intake"), "returned", Some("approver-02")));
        let (instances_before, counts_before) = &before;
        let (instances_after, counts_after) = everything(&e.db).await;
        assert_eq!(counts_after[1], counts_before[1] + 1, "one return row");
        let changed: Vec<&String> = instances_after.iter().filter(|i| !instances_before.contains(i)).map(|(id, _, _)| id).collect();
        assert_eq!(changed, [&hygiene], "{}: only the returned case moved", db.label);
        let row = rows(&e.db, "SELECT item_code, applicant_uscc, officer, department, category FROM returns WHERE id = ?", vec![return_id.clone().into()]).await;
        let row: Vec<Option<String>> = ["item_code", "applicant_uscc", "officer", "department", "category"].iter().map(|c| row[0].try_get("", c).unwrap()).collect();
        assert_eq!(row, [Some(HYGIENE), Some(uscc.as_str()), Some("approver-02"), Some("310101-WJW"), Some("applicant_materials")].map(|v| v.map(str::to_string)));
        let notices = pledgeflow::store::entities::outbox::Entity::find()
            .filter(pledgeflow::store::entities::outbox::Column::InstanceId.eq(hygiene.clone()))
            .filter(pledgeflow::store::entities::outbox::Column::Topic.eq("returned"))
            .all(&e.db)
            .await
            .unwrap();
        assert_eq!(notices.iter().map(|n| n.recipient.as_str()).collect::<Vec<_>>(), ["applicant"]);
        // The statistics count it: the case's state moved to returned, a return on the day, and
        // the running counts are what a recount gives.
        let tz = e.workflows.env.tz;
        let kept = pledgeflow::store::rollup::snapshot(&e.db).await.unwrap();
        let counted = |mode: &str, metric: &str, key: &str| kept.iter().filter(|r| (r.2.as_str(), r.3.as_str(), r.4.as_str(), r.5.as_str()) == (HYGIENE, mode, metric, key)).map(|r| r.6).sum::<i64>();
        assert_eq!((counted("after_the_fact", "state", "returned"), counted("after_the_fact", "state", "intake")), (1, 0), "{}: {kept:?}", db.label);
        assert_eq!(counted("", "returned", ""), 1, "{kept:?}");
        let txn = pledgeflow::store::begin_write(&e.db).await.unwrap();
        pledgeflow::store::rollup::rebuild(&txn, tz).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(pledgeflow::store::rollup::snapshot(&e.db).await.unwrap(), kept, "{}", db.label);
        // Returned once is ended: no second return.
        let r = api.call(Some(&health), ret, json!({"i": returning(&hygiene, HYGIENE)})).await;
        assert_eq!(r["errors"][0]["extensions"]["code"], "INVALID_TRANSITION", "{r}");

        // A case on its own is returned the same way: the bath house's deferral, whose timers
        // are cancelled and whose deferral is no longer pending (settled by neither supply nor expiry).
        let bath = rows(&e.db, "SELECT instance_id FROM cases WHERE applicant_uscc = ? AND item_code = ?", vec!["91350100M000100Y43".into(), HYGIENE.into()]).await;
        let bath: String = bath[0].try_get("", "instance_id").unwrap();
        let pending = |snapshot: &[(String, i64, String, String, String, String, i64)]| {
            snapshot.iter().filter(|r| (r.2.as_str(), r.3.as_str(), r.4.as_str(), r.5.as_str()) == (HYGIENE, "deferral", "deferral", "pending")).map(|r| r.6).sum::<i64>()
        };
        assert_eq!(pending(&kept), 1, "{kept:?}");
        let health_window = staff("window-02", "window", "310101-WJW");
        api.ok(&health_window, ret, json!({"i": returning(&bath, HYGIENE)})).await;
        assert_eq!(pledgeflow::store::instances::load(&e.db, &bath).await.unwrap().state, "returned");
        let timers = pledgeflow::store::instances::timers(&e.db, &bath).await.unwrap();
        assert!(!timers.is_empty() && timers.iter().all(|t| t.status == "cancelled"), "{timers:?}");
        let kept = pledgeflow::store::rollup::snapshot(&e.db).await.unwrap();
        assert_eq!(pending(&kept), 0, "{}: {kept:?}", db.label);
        let txn = pledgeflow::store::begin_write(&e.db).await.unwrap();
        pledgeflow::store::rollup::rebuild(&txn, tz).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(pledgeflow::store::rollup::snapshot(&e.db).await.unwrap(), kept, "{}", db.label);

        // The bundle counts it as ended and waits only for the pharmacy, then completes.
        api.outbox.deliver_due("t").await.unwrap();
        let b = api.ok(&window, &bundle_query, json!({"id": id})).await;
        assert_eq!(b["bundle"]["state"], "running", "{b}");
        assert_eq!(b["bundle"]["holdingUp"], json!([{"itemCode": RETAIL, "kind": "operating_licence"}]), "{b}");
        let r = api.ok(&market, issue, json!({"id": retail})).await;
        let retail_number = r["issueLicence"]["licenceNumber"].as_str().unwrap().to_string();
        api.outbox.deliver_due("t").await.unwrap();
        let b = api.ok(&window, &bundle_query, json!({"id": id})).await;
        let b = &b["bundle"];
        assert_eq!(b["state"], "completed", "{}: {b}", db.label);
        let summary: Vec<(Value, Value, Value, Value)> =
            b["children"].as_array().unwrap().iter().map(|c| (c["itemCode"].clone(), c["outcome"].clone(), c["licenceNumber"].clone(), c["ended"].clone())).collect();
        assert_eq!(
            summary,
            [
                (Value::Null, json!("registered"), json!(uscc), json!(true)),
                (json!(FOOD), json!("licensed"), json!(food_number), json!(true)),
                (json!(HYGIENE), json!("returned"), Value::Null, json!(true)),
                (json!(RETAIL), json!("licensed"), json!(retail_number), json!(true)),
            ]
        );
        assert_eq!(child(b, Some(HYGIENE))["state"], "returned");
        assert_eq!(b["holdingUp"], json!([]));
        db.cleanup().await;
    }
}

const CYCLIC: &str = r#"
name = "bundle"
version = 1
initial = "running"
events = ["child_ended", "all_ended"]

[[children]]
kind = "business_licence"
workflow = "business-registration"
after = ["operating_licence"]

[[children]]
kind = "operating_licence"
after = ["business_licence"]

[states.running]

[states.completed]
final = true

[[transitions]]
from = "running"
on = "child_ended"
internal = true
effects = ["bundle:advance:all_ended"]

[[transitions]]
from = "running"
on = "all_ended"
to = "completed"
"#;

/// `check-workflows` refuses a bundle whose order is a cycle, at the kind that closes it.
#[test]
fn check_workflows_rejects_a_bundle_definition_with_a_dependency_cycle() {
    let registration = std::fs::read_to_string(repo().join("workflows/business-registration.toml")).unwrap();
    let dir = workflows_dir(&[("bundle.toml", CYCLIC), ("business-registration.toml", &registration)]);
    let out = Command::new(bin()).arg("check-workflows").arg(dir.path()).env("PLEDGEFLOW_TEMPLATES_DIR", repo().join("templates")).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("bundle.toml:7: children[0]: the order has a cycle: business_licence after operating_licence after business_licence"), "{text}");

    // Without the cycle it passes; an unknown prerequisite or workflow is named.
    let fixed = CYCLIC.replacen("after = [\"operating_licence\"]\n", "", 1);
    let dir = workflows_dir(&[("bundle.toml", &fixed), ("business-registration.toml", &registration)]);
    let out = Command::new(bin()).arg("check-workflows").arg(dir.path()).env("PLEDGEFLOW_TEMPLATES_DIR", repo().join("templates")).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let check = |text: &str| {
        let dir = workflows_dir(&[("bundle.toml", text), ("business-registration.toml", &registration)]);
        let out = Command::new(bin()).arg("check-workflows").arg(dir.path()).env("PLEDGEFLOW_TEMPLATES_DIR", repo().join("templates")).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    };
    let text = check(&fixed.replace("after = [\"business_licence\"]", "after = [\"trade_mark\"]"));
    assert!(text.contains("children[1]: after unknown kind \"trade_mark\""), "{text}");
    let text = check(&fixed.replace("workflow = \"business-registration\"", "workflow = \"nowhere\""));
    assert!(text.contains("children[0]: kind \"business_licence\" starts unknown workflow \"nowhere\""), "{text}");
}
