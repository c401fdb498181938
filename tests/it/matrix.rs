//! The authorization matrix (issue #16): every query, mutation and subscription of
//! `graphql/schema.graphql`, and every nested field that reaches another object's data, asked
//! by every role from every scope of the real binary; the outcomes are kept in
//! `tests/authz/matrix.txt`. The test fails when the schema has a field without a probe or
//! without rows, when the table has rows for a field that is gone, or when any outcome differs.
//! `PLEDGEFLOW_BLESS_MATRIX=1` rewrites the table from what the server answered (review the
//! diff: it is the policy).
//!
//! The targets are fixed — the demo's cases, tasks and records of Huangpu's market regulator
//! (310101-SCJG), its food division (310101-SCJG-SP) and the applicant 91310110666007217T — and
//! the callers move around them: `own` is staff of that department (division, region) or that
//! applicant; `other_department` staff of another department (division) of Huangpu;
//! `other_region` staff or an applicant of region 310999; `other_enterprise` another Huangpu
//! applicant. Each mutation runs on a fresh copy of the same installation, out-of-scope callers
//! first, and every refused request is checked to have changed nothing (every table).

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf, process::Command, time::Duration};

use futures::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, Message};

use crate::helpers::{bin, repo, TestDb};
use crate::hostile::{settled, snapshot};
use crate::http::graphql_as;

const TABLE: &str = "tests/authz/matrix.txt";
const ROLES: [&str; 9] = ["none", "applicant", "window", "approver", "department_head", "division_admin", "inspector", "supervisor", "regional_admin"];
const SCOPES: [&str; 4] = ["own", "other_department", "other_region", "other_enterprise"];

const OTHER: &str = "310999";
const OTHER_DEPT: &str = "310999-SCJG";
const OTHER_DIV: &str = "310999-SCJG-SP";
/// The demo applicant whose cases are the targets.
const X: &str = "91310110666007217T";
/// Another Huangpu applicant.
const Y: &str = "91350100M000100Y43";
/// An applicant registered by region 310999.
const Z: &str = "91310999MA1G00001D";

/// The department a probe's target was taken in: the comprehensive window takes bundles.
#[derive(Clone, Copy, PartialEq)]
enum Home {
    MarketRegulator,
    ComprehensiveWindow,
}

/// The caller for a role and a scope: a subject and its token's arguments; `None` where the
/// scope means nothing for the role (an applicant has no department, the region's own officers
/// belong to none, anyone-without-a-token has no scope).
fn caller(role: &str, scope: &str, home: Home) -> Option<(&'static str, Vec<&'static str>)> {
    let staff = |s: &'static str| Some((s, vec!["--role", role_name(role)]));
    // Registered after the tokens are minted: the token says the scope the registry will give.
    let staff_at = |s: &'static str, scope: &[&'static str]| Some((s, [vec!["--role", role_name(role)], scope.to_vec()].concat()));
    let applicant = |u: &'static str| Some((u, vec!["--role", "applicant", "--uscc", u]));
    match (role, scope) {
        ("none", "own") => Some(("", vec![])),
        ("none", _) => None,
        ("applicant", "own") => applicant(X),
        ("applicant", "other_region") => applicant(Z),
        ("applicant", "other_enterprise") => applicant(Y),
        ("applicant", _) => None,
        (_, "other_enterprise") => None,
        ("window", "own") if home == Home::ComprehensiveWindow => staff("window-00"),
        ("window", "own") => staff("window-01"),
        ("window", "other_department") => staff("window-02"),
        ("window", "other_region") => staff_at("window-99", &["--department", OTHER_DEPT]),
        ("approver", "own") => staff("approver-01"),
        ("approver", "other_department") => staff("approver-02"),
        ("approver", "other_region") => staff_at("approver-99", &["--department", OTHER_DEPT]),
        ("department_head", "own") => staff("head-01"),
        ("department_head", "other_department") => staff("head-02"),
        ("department_head", "other_region") => staff_at("head-99", &["--department", OTHER_DEPT]),
        ("division_admin", "own") => staff("divadmin-sp"),
        ("division_admin", "other_department") => staff_at("divadmin-ws", &["--department", "310101-WJW", "--division", "310101-WJW-WSJD"]),
        ("division_admin", "other_region") => staff_at("divadmin-99", &["--department", OTHER_DEPT, "--division", OTHER_DIV]),
        ("inspector", "own") => staff("inspector-sp-1"),
        ("inspector", "other_department") => staff_at("inspector-ws", &["--department", "310101-WJW", "--division", "310101-WJW-WSJD"]),
        ("inspector", "other_region") => staff_at("inspector-99", &["--department", OTHER_DEPT, "--division", OTHER_DIV]),
        ("supervisor", "own") => staff("supervisor-01"),
        ("supervisor", "other_region") => staff_at("supervisor-99", &["--department", OTHER_DEPT]),
        ("regional_admin", "own") => staff("admin-01"),
        ("regional_admin", "other_region") => staff("admin-99"),
        _ => None,
    }
}

fn role_name(role: &str) -> &'static str {
    ROLES.iter().find(|r| **r == role).copied().unwrap_or("none")
}

/// The demo objects the probes aim at (ids read from the installation once it is set up).
#[derive(Debug, Default, Clone)]
struct Targets {
    case_awaiting: String,
    case_review: String,
    case_licensed: String,
    task_notified: String,
    task_rectifying: String,
    bundle: String,
    registration: String,
    credit_record: String,
    outbox_message: String,
    draw: String,
    /// A licence its department means to revoke: the notice is out, the statement not yet in.
    case_noticed: String,
    /// The same, with the enterprise's statement in: before the department to decide.
    case_before_department: String,
    /// An ordinary application waiting for the acceptance decision, and one under review.
    ordinary_intake: String,
    ordinary_review: String,
}

/// What a probe reads from a successful answer.
enum See {
    /// The value at the path: `null`, `empty` (an empty list) or `ok`.
    Value(&'static [&'static str]),
    /// Whether the JSON at the path mentions the target: `listed` or `hidden`.
    Lists(&'static [&'static str], fn(&Targets) -> String),
}

struct Probe {
    field: &'static str,
    doc: &'static str,
    vars: fn(&Targets) -> Value,
    see: See,
    home: Home,
}

fn none(_: &Targets) -> Value {
    json!({})
}

macro_rules! probe {
    ($field:literal, $doc:literal, $vars:expr, $see:expr) => {
        Probe { field: $field, doc: $doc, vars: $vars, see: $see, home: Home::MarketRegulator }
    };
    ($field:literal, $doc:literal, $vars:expr, $see:expr, $home:expr) => {
        Probe { field: $field, doc: $doc, vars: $vars, see: $see, home: $home }
    };
}

fn queries() -> Vec<Probe> {
    use See::{Lists, Value as V};
    vec![
        probe!("Query.workflowDefinitions", "{ workflowDefinitions(first: 50) { nodes { name } } }", none, V(&["workflowDefinitions", "nodes"])),
        probe!("Query.workflowDefinition", "{ workflowDefinition(name: \"material-deferral\") { name } }", none, V(&["workflowDefinition"])),
        probe!("Query.workflowInstance", "query($id: ID!) { workflowInstance(id: $id) { id } }", |t| json!({"id": t.case_awaiting}), V(&["workflowInstance"])),
        probe!("Query.workflowInstances", "{ workflowInstances(first: 200) { nodes { id } } }", none, Lists(&["workflowInstances"], |t| t.case_awaiting.clone())),
        probe!("Query.approvalItems", "{ approvalItems(first: 200) { nodes { code } } }", none, Lists(&["approvalItems"], |_| "310101-FOOD-01".into())),
        probe!("Query.approvalItem", "{ approvalItem(code: \"310101-FOOD-01\") { code } }", none, V(&["approvalItem"])),
        probe!("Query.applicant", "query($u: String!) { applicant(uscc: $u) { uscc } }", |_| json!({"u": X}), V(&["applicant"])),
        probe!("Query.creditRecords", "query($u: String!) { creditRecords(uscc: $u) { id } }", |_| json!({"u": X}), Lists(&["creditRecords"], |t| t.credit_record.clone())),
        probe!("Query.applicantChanges", "query($u: String!) { applicantChanges(uscc: $u) { field } }", |_| json!({"u": X}), V(&["applicantChanges"])),
        probe!("Query.departments", "{ departments { code } }", none, Lists(&["departments"], |_| "310101-SCJG\"".into())),
        probe!("Query.staff", "{ staff { id } }", none, Lists(&["staff"], |_| "\"inspector-sp-1\"".into())),
        probe!("Query.case", "query($id: ID!) { case(id: $id) { id } }", |t| json!({"id": t.case_awaiting}), V(&["case"])),
        probe!("Query.slaBreaches", "{ slaBreaches(first: 10) { taskId } }", none, Lists(&["slaBreaches"], |t| t.task_notified.clone())),
        probe!("Query.inspectionDraws", "{ inspectionDraws(first: 50) { id } }", none, Lists(&["inspectionDraws"], |t| t.draw.clone())),
        probe!("Query.outbox", "{ outbox(first: 200) { nodes { instanceId } } }", none, Lists(&["outbox"], |t| t.case_licensed.clone())),
        probe!("Query.viewer", "{ viewer { subject roles } }", none, V(&["viewer"])),
        probe!("Query.serverClock", "{ serverClock { now } }", none, V(&["serverClock"])),
        probe!("Query.publicCommitments", "query($u: String!) { publicCommitments(uscc: $u) { uscc } }", |_| json!({"u": X}), V(&["publicCommitments"])),
        probe!("Query.officerSuspensions", "{ officerSuspensions { officer } }", none, Lists(&["officerSuspensions"], |_| "window-03".into())),
        probe!("Query.flaggedItems", "{ flaggedItems { itemCode } }", none, Lists(&["flaggedItems"], |_| "310101-HY-01".into())),
        probe!("Query.returnRate", "{ returnRate(officer: \"window-01\") { officer intake } }", none, V(&["returnRate"])),
        probe!(
            "Query.auditTrail",
            "query($id: ID!) { auditTrail(filter: {instanceId: $id}, first: 50) { nodes { seq } } }",
            |t| json!({"id": t.case_awaiting}),
            V(&["auditTrail", "nodes"])
        ),
        probe!(
            "Query.statistics",
            "{ statistics(filter: {from: \"2020-01-01T00:00:00Z\", to: \"2099-01-01T00:00:00Z\"}) { casesByModeAndState { count } } }",
            none,
            V(&["statistics", "casesByModeAndState"])
        ),
        probe!("Query.dueSoon", "{ dueSoon(workingDays: 60, first: 200) { instanceId } }", none, Lists(&["dueSoon"], |t| t.case_awaiting.clone())),
        probe!("Query.bundleForm", "{ bundleForm(itemCodes: [\"310101-FOOD-01\"]) { code } }", none, V(&["bundleForm"])),
        probe!("Query.bundle", "query($id: ID!) { bundle(id: $id) { id } }", |t| json!({"id": t.bundle}), V(&["bundle"]), Home::ComprehensiveWindow),
        probe!("Query.enterpriseLicences", "query($u: String!) { enterpriseLicences(uscc: $u) { uscc } }", |_| json!({"u": X}), V(&["enterpriseLicences"])),
        // Nested fields that reach another object's data, each through the root a caller would use.
        probe!("Case.instance", "query($id: ID!) { case(id: $id) { instance { id } } }", |t| json!({"id": t.case_awaiting}), V(&["case", "instance"])),
        probe!(
            "Case.inspectionOutcomes",
            "query($id: ID!) { case(id: $id) { inspectionOutcomes { state } } }",
            |t| json!({"id": t.case_licensed}),
            V(&["case", "inspectionOutcomes"])
        ),
        probe!("Query.enterprise", "query($u: String!) { enterprise(uscc: $u) { uscc } }", |_| json!({"u": X}), V(&["enterprise"])),
        probe!("EnterpriseFile.registration", "query($u: String!) { enterprise(uscc: $u) { registration { uscc } } }", |_| json!({"u": X}), V(&["enterprise", "registration"])),
        probe!(
            "EnterpriseFile.cases",
            "query($u: String!) { enterprise(uscc: $u) { cases(first: 200) { nodes { id } } } }",
            |_| json!({"u": X}),
            Lists(&["enterprise", "cases"], |t| t.case_awaiting.clone())
        ),
        probe!(
            "EnterpriseFile.supervisionTasks",
            "query($u: String!) { enterprise(uscc: $u) { supervisionTasks(first: 200) { nodes { caseId state } } } }",
            |_| json!({"u": X}),
            Lists(&["enterprise", "supervisionTasks"], |t| t.case_licensed.clone())
        ),
        probe!(
            "EnterpriseTask.instance",
            "query($u: String!) { enterprise(uscc: $u) { supervisionTasks(first: 200) { nodes { instance { id } } } } }",
            |_| json!({"u": X}),
            Lists(&["enterprise", "supervisionTasks"], |t| t.task_notified.clone())
        ),
        probe!("EnterpriseFile.bundles", "query($u: String!) { enterprise(uscc: $u) { bundles(first: 50) { nodes { id } } } }", |_| json!({"u": X}), V(&["enterprise", "bundles", "nodes"])),
        probe!("EnterpriseFile.licences", "query($u: String!) { enterprise(uscc: $u) { licences { licenceNumber standing } } }", |_| json!({"u": X}), V(&["enterprise", "licences"])),
        probe!(
            "EnterpriseFile.creditRecords",
            "query($u: String!) { enterprise(uscc: $u) { creditRecords { id } } }",
            |_| json!({"u": X}),
            Lists(&["enterprise", "creditRecords"], |t| t.credit_record.clone())
        ),
        probe!("EnterpriseFile.returns", "query($u: String!) { enterprise(uscc: $u) { returns { id category } } }", |_| json!({"u": X}), V(&["enterprise", "returns"])),
        probe!("Case.notices", "query($id: ID!) { case(id: $id) { notices { topic } } }", |t| json!({"id": t.case_licensed}), V(&["case", "notices"])),
        probe!("Case.materials", "query($id: ID!) { case(id: $id) { materials { code } } }", |t| json!({"id": t.case_awaiting}), V(&["case", "materials"])),
        probe!(
            "WorkflowInstance.history",
            "query($id: ID!) { workflowInstance(id: $id) { history { seq } } }",
            |t| json!({"id": t.task_rectifying}),
            V(&["workflowInstance", "history"])
        ),
        probe!(
            "WorkflowInstance.timers",
            "query($id: ID!) { workflowInstance(id: $id) { timers { name } } }",
            |t| json!({"id": t.task_notified}),
            V(&["workflowInstance", "timers"])
        ),
        probe!(
            "WorkflowInstance.deadlines",
            "query($id: ID!) { workflowInstance(id: $id) { deadlines { name } } }",
            |t| json!({"id": t.task_notified}),
            V(&["workflowInstance", "deadlines"])
        ),
        probe!("Bundle.instance", "query($id: ID!) { bundle(id: $id) { instance { id } } }", |t| json!({"id": t.bundle}), V(&["bundle", "instance"]), Home::ComprehensiveWindow),
        probe!(
            "Bundle.children",
            "query($id: ID!) { bundle(id: $id) { children { instanceId } } }",
            |t| json!({"id": t.bundle}),
            V(&["bundle", "children"]),
            Home::ComprehensiveWindow
        ),
        probe!(
            "Bundle.holdingUp",
            "query($id: ID!) { bundle(id: $id) { holdingUp { instanceId } } }",
            |t| json!({"id": t.bundle}),
            V(&["bundle"]),
            Home::ComprehensiveWindow
        ),
        probe!("OutboxMessage.history", "{ outbox(first: 200) { nodes { instanceId history { outcome } } } }", none, Lists(&["outbox"], |t| t.case_licensed.clone())),
        probe!("InspectionDraw.picks", "{ inspectionDraws(first: 50) { id picks { caseId } } }", none, Lists(&["inspectionDraws"], |t| t.draw.clone())),
        probe!("DepartmentView.divisions", "{ departments { divisions { code } } }", none, Lists(&["departments"], |_| "310101-SCJG-SP\"".into())),
        probe!(
            "PublicEnterprise.commitments",
            "query($u: String!) { publicCommitments(uscc: $u) { commitments { itemCode } } }",
            |_| json!({"u": X}),
            V(&["publicCommitments", "commitments"])
        ),
        probe!(
            "PublicLicenceHolder.licences",
            "query($u: String!) { enterpriseLicences(uscc: $u) { licences { licenceNumber } } }",
            |_| json!({"u": X}),
            V(&["enterpriseLicences", "licences"])
        ),
    ]
}

fn mutations() -> Vec<Probe> {
    use See::Value as V;
    vec![
        probe!(
            "Mutation.fireEvent",
            "mutation($id: ID!) { fireEvent(input: {instanceId: $id, event: \"withdraw\", payload: {reason: \"申请人撤回\"}}) { seq } }",
            |t| json!({"id": t.case_awaiting}),
            V(&["fireEvent"])
        ),
        probe!(
            "Mutation.putDepartment",
            "mutation { putDepartment(input: {region: \"310101\", regionName: \"黄浦区\", code: \"310101-SCJG\", name: \"黄浦区市场监督管理局\", side: \"approval\", registrationAuthority: true, divisions: [{code: \"310101-SCJG-SP\", name: \"食品经营监管科\"}, {code: \"310101-SCJG-TZ\", name: \"特种设备安全监察科\"}, {code: \"310101-SCJG-YP\", name: \"药品监管科\"}]}) { code } }",
            none,
            V(&["putDepartment"])
        ),
        probe!(
            "Mutation.putSupervisionItem",
            "mutation { putSupervisionItem(input: {code: \"SUP-310101-FOOD-01\", name: \"食品经营许可事中事后监管\", department: \"310101-SCJG\", division: \"310101-SCJG-SP\"}) { code } }",
            none,
            V(&["putSupervisionItem"])
        ),
        probe!(
            "Mutation.putStaff",
            "mutation { putStaff(input: {id: \"window-01\", name: \"李窗口\", department: \"310101-SCJG\", roles: [\"window\"]}) { code } }",
            none,
            V(&["putStaff"])
        ),
        probe!(
            "Mutation.putApprovalItem",
            "mutation { putApprovalItem(input: {code: \"310101-MX-01\", name: \"矩阵事项\", department: \"310101-SCJG\", spec: {legalBasis: \"依据\", reformMode: \"实行告知承诺\", conditions: [\"条件\"], materials: [{code: \"M01\", name: \"申请书\"}], modes: {afterTheFact: true}, commitmentTemplate: \"承诺书\", commitmentVersion: 1, breachConsequences: \"撤销许可\", licencePattern: \"MX{seq:04}\"}}) { item { code } } }",
            none,
            V(&["putApprovalItem"])
        ),
        probe!(
            "Mutation.putApplicant",
            "mutation($u: String!) { putApplicant(input: {uscc: $u, name: \"上海示例餐饮管理有限公司\", legalRepresentative: \"张伟\"}) { applicant { uscc } } }",
            |_| json!({"u": X}),
            V(&["putApplicant"])
        ),
        probe!(
            "Mutation.repairCredit",
            "mutation($id: ID!) { repairCredit(input: {recordId: $id, reason: \"已完成信用修复\"}) { repair { id } } }",
            |t| json!({"id": t.credit_record}),
            V(&["repairCredit"])
        ),
        probe!(
            "Mutation.recordItemReexamination",
            "mutation { recordItemReexamination(input: {itemCode: \"310101-FOOD-01\", findings: \"办事指南已重新梳理\"}) { cleared } }",
            none,
            V(&["recordItemReexamination"])
        ),
        probe!(
            "Mutation.listDishonest",
            "mutation($u: String!) { listDishonest(input: {uscc: $u, basis: \"《失信行为纠正后的信用信息修复管理办法》\", reason: \"黄市监信〔2026〕3号\"}) { listing { id } } }",
            |_| json!({"u": X}),
            V(&["listDishonest"])
        ),
        probe!(
            "Mutation.importCredit",
            "mutation($u: String!) { importCredit(input: {records: [{uscc: $u, tier: \"A\", dishonest: false}]}) { updated } }",
            |_| json!({"u": X}),
            V(&["importCredit"])
        ),
        probe!(
            "Mutation.importElectronicLicences",
            "mutation($u: String!) { importElectronicLicences(input: {licences: [{holderUscc: $u, kind: \"business_licence\", number: \"310101000000000\", validUntil: \"2045-12-31\"}]}) { imported } }",
            |_| json!({"u": X}),
            V(&["importElectronicLicences"])
        ),
        probe!(
            "Mutation.openCase",
            "mutation($u: String!, $m: [MaterialInput!]!) { openCase(input: {applicantUscc: $u, itemCode: \"310101-FOOD-01\", mode: AFTER_THE_FACT, signedBy: \"张伟\", materials: $m}) { case { id } } }",
            |_| json!({"u": X, "m": [{"code": "M01", "status": "PROVIDED", "fileRef": "DOC-1"}, {"code": "M02", "status": "PROVIDED", "fileRef": "DOC-2"}, {"code": "M03", "status": "PROVIDED", "fileRef": "DOC-3"}]}),
            V(&["openCase"])
        ),
        probe!(
            "Mutation.submitMaterial",
            "mutation($id: ID!) { submitMaterial(input: {caseId: $id, code: \"M02\", fileRef: \"DOC-2\"}) { case { id } } }",
            |t| json!({"id": t.case_awaiting}),
            V(&["submitMaterial"])
        ),
        probe!(
            "Mutation.stateCase",
            "mutation($id: ID!) { stateCase(input: {caseId: $id, statement: \"已按要求整改，请求不予撤销\"}) { case { id } } }",
            |t| json!({"id": t.case_noticed}),
            V(&["stateCase"])
        ),
        probe!(
            "Mutation.decideRevocation",
            "mutation($id: ID!) { decideRevocation(input: {caseId: $id, decision: GRACE, reason: \"给予宽限期整改\"}) { case { id } } }",
            |t| json!({"id": t.case_before_department}),
            V(&["decideRevocation"])
        ),
        probe!(
            "Mutation.decideAcceptance",
            "mutation($id: ID!) { decideAcceptance(input: {caseId: $id, decision: NOT_ACCEPT, reason: \"不属于本机关职权范围\"}) { case { id } } }",
            |t| json!({"id": t.ordinary_intake}),
            V(&["decideAcceptance"])
        ),
        probe!(
            "Mutation.receiveCorrection",
            "mutation($id: ID!) { receiveCorrection(input: {caseId: $id, fileRef: \"DOC-补正\"}) { case { id } } }",
            |t| json!({"id": t.ordinary_intake}),
            V(&["receiveCorrection"])
        ),
        probe!(
            "Mutation.suspendReview",
            "mutation($id: ID!) { suspendReview(input: {caseId: $id, kind: ON_SITE_CHECK, reason: \"需现场核查\"}) { case { id } } }",
            |t| json!({"id": t.ordinary_review}),
            V(&["suspendReview"])
        ),
        probe!(
            "Mutation.resumeReview",
            "mutation($id: ID!) { resumeReview(input: {caseId: $id}) { case { id } } }",
            |t| json!({"id": t.ordinary_review}),
            V(&["resumeReview"])
        ),
        probe!(
            "Mutation.extendTimeLimit",
            "mutation($id: ID!) { extendTimeLimit(input: {caseId: $id, workingDays: 5, reason: \"需征求相关部门意见\"}) { case { id } } }",
            |t| json!({"id": t.ordinary_review}),
            V(&["extendTimeLimit"])
        ),
        probe!("Mutation.issueLicence", "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }", |t| json!({"id": t.case_review}), V(&["issueLicence"])),
        probe!(
            "Mutation.returnApplication",
            "mutation($id: ID!) { returnApplication(input: {itemCode: \"310101-FOOD-01\", caseId: $id, category: APPLICANT_MATERIALS, reason: \"材料不全\"}) { id } }",
            |t| json!({"id": t.case_review}),
            V(&["returnApplication"])
        ),
        probe!(
            "Mutation.assignInspectors",
            "mutation($id: ID!) { assignInspectors(input: {taskId: $id, inspectors: [\"inspector-sp-1\"]}) { task { id } } }",
            |t| json!({"id": t.task_notified}),
            V(&["assignInspectors"])
        ),
        probe!(
            "Mutation.recordInspection",
            "mutation($id: ID!) { recordInspection(input: {taskId: $id, inspectedOn: \"2026-12-01\", findings: [{condition: \"从业人员持有效健康证明\", kept: true}]}) { task { id } } }",
            |t| json!({"id": t.task_notified}),
            V(&["recordInspection"])
        ),
        probe!(
            "Mutation.feedBackInspection",
            "mutation($id: ID!) { feedBackInspection(input: {taskId: $id}) { task { id } } }",
            |t| json!({"id": t.task_rectifying}),
            V(&["feedBackInspection"])
        ),
        probe!(
            "Mutation.recordReinspection",
            "mutation($id: ID!) { recordReinspection(input: {taskId: $id, inspectedOn: \"2026-12-01\", findings: [{condition: \"从业人员持有效健康证明\", kept: true}]}) { task { id } } }",
            |t| json!({"id": t.task_rectifying}),
            V(&["recordReinspection"])
        ),
        probe!("Mutation.drawInspections", "mutation { drawInspections(input: {seed: \"20261202\"}) { draw { id } } }", none, V(&["drawInspections"])),
        probe!(
            "Mutation.requeueOutboxMessage",
            "mutation($id: ID!) { requeueOutboxMessage(input: {id: $id}) { message { id } } }",
            |t| json!({"id": t.outbox_message}),
            V(&["requeueOutboxMessage"])
        ),
        probe!("Mutation.advanceClock", "mutation { advanceClock(input: {bySeconds: 60}) { now } }", none, V(&["advanceClock"])),
        probe!(
            "Mutation.recordRetraining",
            "mutation { recordRetraining(input: {officer: \"window-03\", retraining: \"业务培训\"}) { suspension { officer } } }",
            none,
            V(&["recordRetraining"])
        ),
        probe!(
            "Mutation.openBundle",
            "mutation($u: String!) { openBundle(input: {applicantUscc: $u, items: [{itemCode: \"310101-FOOD-01\", mode: AFTER_THE_FACT, materials: [{code: \"M01\", status: PROVIDED, fileRef: \"B-1\"}, {code: \"M02\", status: PROVIDED, fileRef: \"B-2\"}, {code: \"M03\", status: PROVIDED, fileRef: \"B-3\"}]}], fields: [{code: \"premises_address\", value: \"上海市黄浦区示例路 2 号\"}, {code: \"business_area\", value: \"80\"}, {code: \"food_safety_manager\", value: \"张伟\"}], signedBy: \"张伟\"}) { bundle { id } } }",
            |_| json!({"u": X}),
            V(&["openBundle"]),
            Home::ComprehensiveWindow
        ),
        probe!(
            "Mutation.registerEnterprise",
            "mutation($id: ID!) { registerEnterprise(input: {registrationId: $id}) { uscc } }",
            |t| json!({"id": t.registration}),
            V(&["registerEnterprise"])
        ),
        probe!(
            "Mutation.deregisterBusinessLicence",
            "mutation($u: String!) { deregisterBusinessLicence(input: {uscc: $u, reason: \"注销登记\"}) { ended } }",
            |_| json!({"u": X}),
            V(&["deregisterBusinessLicence"])
        ),
    ]
}

fn subscriptions() -> Vec<Probe> {
    vec![
        probe!("SubscriptionRoot.caseEvents", "subscription($id: ID!) { caseEvents(instanceId: $id) { seq } }", |t| json!({"id": t.case_awaiting}), See::Value(&[])),
        probe!("SubscriptionRoot.newTasks", "subscription { newTasks { id } }", none, See::Value(&[])),
    ]
}

/// Types whose object-valued fields are parts of the same row or aggregate (not another object's
/// data), and the plumbing of connections and mutation payloads (their object is the mutation's).
fn is_value_field(ty: &str, field: &str) -> bool {
    matches!(ty, "ItemSpec" | "Statistics" | "WorkflowDefinition" | "WorkflowState" | "ApprovalItem")
        || ty.ends_with("Connection")
        || ty.ends_with("Edge")
        || ty.ends_with("Payload")
        || field == "pageInfo"
}

/// Every field the matrix must cover, read from the exported schema.
fn schema_fields() -> Vec<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let sdl = std::fs::read_to_string(repo().join("graphql/schema.graphql")).unwrap();
    let doc = async_graphql::parser::parse_schema(&sdl).unwrap();
    let mut objects = std::collections::HashSet::new();
    for def in &doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            if matches!(t.node.kind, TypeKind::Object(_)) {
                objects.insert(t.node.name.node.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for def in &doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let TypeKind::Object(o) = &t.node.kind else { continue };
        let name = t.node.name.node.as_str();
        let root = matches!(name, "Query" | "Mutation" | "SubscriptionRoot");
        for f in &o.fields {
            let field = f.node.name.node.as_str();
            let target = base_type(&f.node.ty.node.to_string());
            if root || (objects.contains(&target) && !is_value_field(name, field)) {
                out.push(format!("{name}.{field}"));
            }
        }
    }
    out
}

fn base_type(t: &str) -> String {
    t.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// One installation: the demo, region 310999 with staff of every role, Huangpu's health office
/// given a division admin and an inspector, and one change of the target applicant on record.
struct Fixture {
    dir: tempfile::TempDir,
    key_file: PathBuf,
    /// The set-up database (SQLite file or PostgreSQL database) every run starts from.
    pristine: String,
    pg: Option<TestDb>,
    targets: Targets,
    tokens: BTreeMap<String, String>,
}

/// A server of the fixture's: its process, address and database.
struct Running {
    server: crate::http::Server,
    base: String,
    url: String,
}

impl Running {
    fn stop(self) {
        self.server.stop();
    }
}

impl Fixture {
    async fn serve(&self, url: &str, demo: bool) -> Running {
        let key_file = self.key_file.display().to_string();
        let env = [
            ("PLEDGEFLOW_KEY_FILE", key_file.as_str()),
            ("PLEDGEFLOW_CLOCK", "manual"),
            ("PLEDGEFLOW_SWEEP_SCHEDULE", "0 0 0 1 1 * 2099"),
            ("PLEDGEFLOW_PUBLIC_REQUESTS_PER_MINUTE", "100000"),
            ("RUST_LOG", "warn"),
        ];
        let (server, base, url) = crate::http::serve_on(self.dir.path(), url, demo, &env).await;
        Running { server, base, url }
    }

    fn cli(&self, url: &str, args: &[&str]) -> String {
        let out = Command::new(bin()).args(args).env("PLEDGEFLOW_DATABASE_URL", url).env("PLEDGEFLOW_KEY_FILE", &self.key_file).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    async fn new(pg: Option<TestDb>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("signing.key");
        let pristine = match &pg {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}/pristine.db", dir.path().display()),
        };
        let mut f = Fixture { dir, key_file, pristine, pg, targets: Targets::default(), tokens: BTreeMap::new() };
        let server = f.serve(&f.pristine.clone(), true).await;
        f.cli(&server.url, &["staff", "--id", "admin-99", "--name", "外区管理", "--role", "regional_admin", "--region", OTHER, "--region-name", "外区"]);
        f.mint_all(&server.url);
        let http = crate::http::client();
        let ask = |who: &str, doc: &str, vars: Value| {
            let token = f.tokens[who].clone();
            let http = http.clone();
            let base = server.base.clone();
            let doc = doc.to_string();
            async move {
                let r = graphql_as(&http, &base, &token, json!({"query": doc, "variables": vars})).await;
                assert!(r.get("errors").is_none(), "set-up: {r}");
                r
            }
        };
        ask("admin-99", "mutation($i: PutDepartmentInput!) { putDepartment(input: $i) { code } }", json!({"i": {"region": OTHER, "regionName": "外区", "code": OTHER_DEPT,
            "name": "外区市场监督管理局", "side": "approval", "registrationAuthority": true, "divisions": [{"code": OTHER_DIV, "name": "食品科"}]}}))
        .await;
        let put_staff = "mutation($i: PutStaffInput!) { putStaff(input: $i) { code } }";
        for (id, role, division) in [
            ("window-99", "window", None),
            ("approver-99", "approver", None),
            ("head-99", "department_head", None),
            ("supervisor-99", "supervisor", None),
            ("inspector-99", "inspector", Some(OTHER_DIV)),
            ("divadmin-99", "division_admin", Some(OTHER_DIV)),
        ] {
            ask("admin-99", put_staff, json!({"i": {"id": id, "name": id, "department": OTHER_DEPT, "division": division, "roles": [role]}})).await;
        }
        for (id, role) in [("divadmin-ws", "division_admin"), ("inspector-ws", "inspector")] {
            ask("admin-01", put_staff, json!({"i": {"id": id, "name": id, "department": "310101-WJW", "division": "310101-WJW-WSJD", "roles": [role]}})).await;
        }
        let put_applicant = "mutation($i: PutApplicantInput!) { putApplicant(input: $i) { applicant { uscc } } }";
        ask("admin-99", put_applicant, json!({"i": {"uscc": Z, "name": "外区示例有限公司", "legalRepresentative": "王五"}})).await;
        ask("window-01", put_applicant, json!({"i": {"uscc": X, "name": "上海示例餐饮管理有限公司", "legalRepresentative": "张伟", "mobile": "13800000100"}})).await;
        ask("supervisor-01", "mutation { drawInspections(input: {seed: \"20261201\"}) { draw { id } } }", json!({})).await;
        // Two licences of X its department means to revoke; the second with X's statement in.
        let mut noticed = Vec::new();
        for _ in 0..2 {
            let provided = json!([{"code": "M01", "status": "PROVIDED", "fileRef": "D1"}, {"code": "M02", "status": "PROVIDED", "fileRef": "D2"}, {"code": "M03", "status": "PROVIDED", "fileRef": "D3"}]);
            let open = "mutation($u: String!, $m: [MaterialInput!]!) { openCase(input: {applicantUscc: $u, itemCode: \"310101-FOOD-01\", mode: AFTER_THE_FACT, signedBy: \"张伟\", materials: $m}) { case { id } } }";
            let r = ask("window-01", open, json!({"u": X, "m": provided})).await;
            let id = r["data"]["openCase"]["case"]["id"].as_str().unwrap().to_string();
            ask("approver-01", "mutation($id: ID!) { issueLicence(input: {caseId: $id}) { licenceNumber } }", json!({"id": id})).await;
            ask("approver-01", "mutation($id: ID!) { fireEvent(input: {instanceId: $id, event: \"revoke\", payload: {reason: \"现场核查不符合许可条件\"}}) { seq } }", json!({"id": id})).await;
            noticed.push(id);
        }
        ask("window-01", "mutation($id: ID!) { stateCase(input: {caseId: $id, statement: \"申请人书面陈述\"}) { case { id } } }", json!({"id": noticed[1]})).await;
        let db = pledgeflow::store::connect(&server.url, 1).await.unwrap();
        settled(&db).await;
        f.targets = targets(&db).await;
        (f.targets.case_noticed, f.targets.case_before_department) = (noticed[0].clone(), noticed[1].clone());
        // What the return rule and the supervision limits would leave on record, for the listings
        // to show or hide: the road freight window suspended, its item flagged, a look-at limit missed.
        let now = chrono::Utc::now().timestamp_millis();
        for sql in [
            format!("INSERT INTO officer_suspensions (id, officer, department, suspended_at, own_errors, intake) VALUES ('mx-suspension', 'window-03', '310101-JTW', {now}, 3, 20)"),
            format!("INSERT INTO item_flags (id, item_code, item_version, flagged_at, misconfigured, intake) VALUES ('mx-flag', '310101-HY-01', 1, {now}, 3, 20)"),
            format!("INSERT INTO item_flags (id, item_code, item_version, flagged_at, misconfigured, intake, department) VALUES ('mx-flag-food', '310101-FOOD-01', 1, {now}, 3, 20, '310101-SCJG')"),
            format!(
                "INSERT INTO sla_breaches (id, instance_id, event_seq, region, department, division, limit_kind, breached_at) VALUES ('mx-breach', '{}', 1, '310101', '310101-SCJG', '310101-SCJG-SP', 'look_at', {now})",
                f.targets.task_notified
            ),
        ] {
            db.execute_unprepared(&sql).await.unwrap();
        }
        db.close().await.unwrap();
        server.stop();
        f
    }

    /// A token for every caller of the table (and the set-up's admins).
    fn mint_all(&mut self, url: &str) {
        for role in ROLES {
            for scope in SCOPES {
                for home in [Home::MarketRegulator, Home::ComprehensiveWindow] {
                    let Some((subject, args)) = caller(role, scope, home) else { continue };
                    if subject.is_empty() || self.tokens.contains_key(subject) {
                        continue;
                    }
                    let mut all = vec!["token", "--subject", subject];
                    all.extend(args.iter());
                    let token = self.cli(url, &all);
                    self.tokens.insert(subject.to_string(), token);
                }
            }
        }
    }

    /// A copy of the set-up installation to run on.
    async fn copy(&self, n: usize) -> String {
        match &self.pg {
            Some(db) => {
                let name = format!("{}_r{n}", db.url.rsplit('/').next().unwrap());
                let admin_url = std::env::var("PLEDGEFLOW_TEST_DATABASE_URL").unwrap();
                let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
                let pristine = db.url.rsplit('/').next().unwrap();
                admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{pristine}\"")).await.unwrap();
                admin.close().await.ok();
                let base = db.url.rsplit_once('/').unwrap().0;
                format!("{base}/{name}")
            }
            None => {
                let from = self.dir.path().join("pristine.db");
                let to = self.dir.path().join(format!("run{n}.db"));
                std::fs::copy(&from, &to).unwrap();
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", from.display()));
                    if side.exists() {
                        std::fs::copy(&side, format!("{}{suffix}", to.display())).unwrap();
                    }
                }
                format!("sqlite://{}", to.display())
            }
        }
    }

    async fn drop_copy(&self, url: &str) {
        if let (Some(_), Ok(admin_url)) = (&self.pg, std::env::var("PLEDGEFLOW_TEST_DATABASE_URL")) {
            let admin = sea_orm::Database::connect(&admin_url).await.unwrap();
            let name = url.rsplit('/').next().unwrap();
            let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            admin.close().await.ok();
        }
    }

    async fn done(self) {
        if let Some(pg) = self.pg {
            pg.cleanup().await;
        }
    }
}

async fn one(db: &sea_orm::DatabaseConnection, what: &str, sql: &str) -> String {
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap().unwrap_or_else(|| panic!("no {what} in the fixture"));
    row.try_get::<String>("", "id").unwrap()
}

async fn targets(db: &sea_orm::DatabaseConnection) -> Targets {
    let case = |definition: &str, state: &str| {
        format!(
            "SELECT i.id FROM workflow_instances i JOIN cases c ON c.instance_id = i.id WHERE i.definition_name = '{definition}' AND i.state = '{state}' \
             AND i.department = '310101-SCJG' AND i.parent_id IS NULL AND c.applicant_uscc = '{X}' ORDER BY i.created_at, i.id"
        )
    };
    let task = |state: &str| {
        format!("SELECT id FROM workflow_instances WHERE definition_name = 'supervision-task' AND state = '{state}' AND division = '310101-SCJG-SP' ORDER BY created_at, id")
    };
    let case_licensed = one(db, "licensed case", &case("after-the-fact-review", "licensed")).await;
    Targets {
        case_awaiting: one(db, "case awaiting materials", &case("material-deferral", "awaiting_materials")).await,
        case_review: one(db, "case under review", &case("material-verification", "under_review")).await,
        task_notified: one(db, "notified task", &task("notified")).await,
        task_rectifying: one(db, "task in rectification", &task("rectifying")).await,
        bundle: one(db, "bundle", "SELECT id FROM workflow_instances WHERE definition_name = 'bundle'").await,
        registration: one(db, "registration", "SELECT id FROM workflow_instances WHERE definition_name = 'business-registration'").await,
        credit_record: one(db, "credit record", &format!("SELECT id FROM credit_records WHERE applicant_uscc = '{X}' AND repaired_at IS NULL ORDER BY created_at, id")).await,
        outbox_message: one(db, "outbox message", &format!("SELECT id FROM outbox WHERE instance_id = '{case_licensed}' ORDER BY created_at, id")).await,
        draw: one(db, "draw", "SELECT id FROM inspection_draws").await,
        ordinary_intake: one(db, "ordinary application at intake", &case("standard-review", "intake")).await,
        ordinary_review: one(db, "ordinary application under review", &case("standard-review", "under_review")).await,
        case_licensed,
        // Set by the fixture from the cases it opened for them.
        case_noticed: String::new(),
        case_before_department: String::new(),
    }
}

/// The outcome of one answer: the first error's code (with its reason), else what the probe sees.
fn outcome(r: &Value, see: &See, t: &Targets) -> String {
    if let Some(e) = r["errors"].as_array().and_then(|e| e.first()) {
        let code = e["extensions"]["code"].as_str().unwrap_or("NO_CODE");
        return match e["extensions"]["reason"].as_str() {
            Some(reason) => format!("{code}:{reason}"),
            None => code.to_string(),
        };
    }
    match see {
        See::Value(path) => {
            let mut v = &r["data"];
            for step in path.iter() {
                v = &v[step];
                if let Some(list) = v.as_array() {
                    match list.first() {
                        None => return "empty".into(),
                        Some(first) => v = first,
                    }
                }
                if v.is_null() {
                    return "null".into();
                }
            }
            "ok".into()
        }
        See::Lists(path, needle) => {
            let v = path.iter().fold(&r["data"], |v, step| &v[step]);
            if v.is_null() {
                "null".into()
            } else if v.to_string().contains(&needle(t)) {
                "listed".into()
            } else {
                "hidden".into()
            }
        }
    }
}

type Outcomes = BTreeMap<(String, &'static str), [String; 4]>;

fn blank() -> [String; 4] {
    std::array::from_fn(|_| "-".to_string())
}

/// The order cells are asked in: out of scope first, so that what the own scope may do (and
/// does) cannot change another cell's answer.
const ORDER: [usize; 4] = [2, 1, 3, 0];

async fn ask(http: &reqwest::Client, base: &str, token: &str, doc: &str, vars: Value) -> Value {
    let body = json!({"query": doc, "variables": vars});
    let mut req = http.post(format!("{base}/graphql")).json(&body);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    req.send().await.unwrap().json().await.unwrap()
}

async fn run_queries(f: &Fixture, server: &Running, out: &mut Outcomes) {
    let http = crate::http::client();
    for p in queries() {
        for role in ROLES {
            let row = out.entry((p.field.to_string(), role)).or_insert_with(blank);
            for s in ORDER {
                let Some((subject, _)) = caller(role, SCOPES[s], p.home) else { continue };
                let token = f.tokens.get(subject).cloned().unwrap_or_default();
                let r = ask(&http, &server.base, &token, p.doc, (p.vars)(&f.targets)).await;
                row[s] = outcome(&r, &p.see, &f.targets);
            }
        }
    }
}

/// Every mutation on its own copy; refused cells leave every table as it was.
async fn run_mutations(f: &Fixture, out: &mut Outcomes, label: &str) {
    let http = crate::http::client();
    for (n, p) in mutations().into_iter().enumerate() {
        let url = f.copy(n).await;
        let server = f.serve(&url, false).await;
        let db = pledgeflow::store::connect(&url, 1).await.unwrap();
        let mut before = settled(&db).await;
        for role in ROLES {
            for s in ORDER {
                let Some((subject, _)) = caller(role, SCOPES[s], p.home) else { continue };
                let token = f.tokens.get(subject).cloned().unwrap_or_default();
                let r = ask(&http, &server.base, &token, p.doc, (p.vars)(&f.targets)).await;
                let got = outcome(&r, &p.see, &f.targets);
                if got == "ok" {
                    before = settled(&db).await;
                } else {
                    assert_eq!(snapshot(&db).await, before, "{label}: {} by {subject} ({role}, {}) was refused ({got}) yet changed the database", p.field, SCOPES[s]);
                }
                out.entry((p.field.to_string(), role)).or_insert_with(blank)[s] = got;
            }
        }
        db.close().await.ok();
        server.stop();
        f.drop_copy(&url).await;
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_next(ws: &mut Ws, wait: Duration) -> Option<Value> {
    loop {
        match tokio::time::timeout(wait, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(Message::Close(frame)))) => return Some(json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))})),
            Ok(None) | Ok(Some(Err(_))) => return Some(json!({"type": "closed"})),
            Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// A subscription's outcome: refused at `connection_init` (the close code's meaning), an
/// `error` for the operation (its code), or `ok` when the server took it and kept it open.
async fn subscribe(base: &str, token: String, doc: &str, vars: Value) -> String {
    let mut request = format!("{}/graphql/ws", base.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = if token.is_empty() { json!({}) } else { json!({"Authorization": format!("Bearer {token}")}) };
    ws.send(Message::Text(json!({"type": "connection_init", "payload": init}).to_string().into())).await.unwrap();
    match ws_next(&mut ws, Duration::from_secs(10)).await {
        Some(m) if m["type"] == "connection_ack" => {}
        Some(m) if m["type"] == "closed" => return format!("CLOSED:{}", m["code"]),
        other => panic!("connection_init answered {other:?}"),
    }
    ws.send(Message::Text(json!({"id": "1", "type": "subscribe", "payload": {"query": doc, "variables": vars}}).to_string().into())).await.unwrap();
    // A refusal is immediate; a subscription taken stays silent until something happens.
    match ws_next(&mut ws, Duration::from_secs(2)).await {
        None => "ok".into(),
        Some(m) if m["type"] == "error" => outcome(&json!({"errors": m["payload"]}), &See::Value(&[]), &Targets::default()),
        Some(m) if m["type"] == "next" => outcome(&m["payload"], &See::Value(&[]), &Targets::default()),
        Some(m) => format!("{}", m["type"].as_str().unwrap_or("?").to_uppercase()),
    }
}

async fn run_subscriptions(f: &Fixture, server: &Running, out: &mut Outcomes) {
    for p in subscriptions() {
        let mut cells = Vec::new();
        for role in ROLES {
            for s in ORDER {
                let Some((subject, _)) = caller(role, SCOPES[s], p.home) else { continue };
                let token = f.tokens.get(subject).cloned().unwrap_or_default();
                cells.push((role, s, subscribe(&server.base, token, p.doc, (p.vars)(&f.targets))));
            }
        }
        let (keys, futs): (Vec<_>, Vec<_>) = cells.into_iter().map(|(r, s, fut)| ((r, s), fut)).unzip();
        for ((role, s), got) in keys.into_iter().zip(futures::future::join_all(futs).await) {
            out.entry((p.field.to_string(), role)).or_insert_with(blank)[s] = got;
        }
    }
}

async fn measure(f: &Fixture, label: &str) -> Outcomes {
    let mut out = Outcomes::new();
    let url = f.copy(1000).await;
    let server = f.serve(&url, false).await;
    run_queries(f, &server, &mut out).await;
    run_subscriptions(f, &server, &mut out).await;
    server.stop();
    f.drop_copy(&url).await;
    run_mutations(f, &mut out, label).await;
    out
}

fn render(out: &Outcomes) -> String {
    let mut text = String::from(
        "# The authorization matrix: generated by tests/it/matrix.rs against the real binary, checked there.\n\
         # A row per field and role; a column per scope of the caller relative to the target (the demo's\n\
         # objects of Huangpu's market regulator 310101-SCJG, its food division and applicant\n\
         # 91310110666007217T): own, another department (division) of the region, another region (310999),\n\
         # another enterprise (applicants only). `-`: the scope means nothing for the role.\n\
         # Outcomes: ok / null / empty / listed / hidden (what a successful answer shows), else the error's\n\
         # extensions.code[:reason]. A code other than UNAUTHENTICATED, FORBIDDEN and NOT_FOUND means the\n\
         # policy let the request through and the act itself answered (say, a state that does not allow it).\n",
    );
    let _ = writeln!(text, "{:<34} {:<15} {:<32} {:<32} {:<32} {}", "# field", "role", SCOPES[0], SCOPES[1], SCOPES[2], SCOPES[3]);
    let order: Vec<String> = schema_fields();
    let mut keys: Vec<&(String, &str)> = out.keys().collect();
    keys.sort_by_key(|(field, role)| (order.iter().position(|f| f == field).unwrap_or(usize::MAX), field.clone(), ROLES.iter().position(|r| r == role)));
    for key in keys {
        let c = &out[key];
        let _ = writeln!(text, "{:<34} {:<15} {:<32} {:<32} {:<32} {}", key.0, key.1, c[0], c[1], c[2], c[3]);
    }
    text
}

fn parse(text: &str) -> Outcomes {
    let mut out = Outcomes::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols.len(), 6, "{TABLE}: a row is a field, a role and four outcomes: {line:?}");
        let role = *ROLES.iter().find(|r| **r == cols[1]).unwrap_or_else(|| panic!("{TABLE}: no role {:?}", cols[1]));
        let prev = out.insert((cols[0].to_string(), role), [cols[2], cols[3], cols[4], cols[5]].map(str::to_string));
        assert!(prev.is_none(), "{TABLE}: {} {} twice", cols[0], cols[1]);
    }
    out
}

/// The schema and the probes cover each other: a field added without a probe, or a probe for a
/// field that is gone, fails here before anything runs.
#[test]
fn every_field_of_the_schema_has_a_probe_and_rows() {
    let fields = schema_fields();
    let probed: Vec<&str> = queries().iter().chain(mutations().iter()).chain(subscriptions().iter()).map(|p| p.field).collect();
    let missing: Vec<&String> = fields.iter().filter(|f| !probed.contains(&f.as_str())).collect();
    assert!(missing.is_empty(), "fields without a probe in tests/it/matrix.rs (and rows in {TABLE}): {missing:?}");
    let stale: Vec<&&str> = probed.iter().filter(|p| !fields.iter().any(|f| f == *p)).collect();
    assert!(stale.is_empty(), "probes for fields the schema no longer has: {stale:?}");
    let table = parse(&std::fs::read_to_string(repo().join(TABLE)).unwrap_or_default());
    for field in &fields {
        for role in ROLES {
            assert!(table.contains_key(&(field.clone(), role)), "{TABLE} has no row for {field} × {role}");
        }
    }
    let gone: Vec<&(String, &str)> = table.keys().filter(|(f, _)| !fields.contains(f)).collect();
    assert!(gone.is_empty(), "{TABLE} has rows for fields the schema no longer has: {gone:?}");
}

#[tokio::test]
async fn every_role_from_every_scope_gets_the_outcome_the_table_holds() {
    let mut installations = vec![Fixture::new(None).await];
    if let Some(admin) = std::env::var("PLEDGEFLOW_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        installations.push(Fixture::new(Some(TestDb::postgres(&admin).await)).await);
    }
    let path = repo().join(TABLE);
    for f in installations {
        let label = if f.pg.is_some() { "postgres" } else { "sqlite" };
        let got = measure(&f, label).await;
        if std::env::var("PLEDGEFLOW_BLESS_MATRIX").is_ok_and(|v| v == "1") && label == "sqlite" {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, render(&got)).unwrap();
        }
        let want = parse(&std::fs::read_to_string(&path).unwrap_or_default());
        let mut differ = Vec::new();
        for (key, cells) in &got {
            match want.get(key) {
                None => differ.push(format!("{} × {}: no row (got {cells:?})", key.0, key.1)),
                Some(w) if w != cells => differ.push(format!("{} × {}: table {w:?}, server {cells:?}", key.0, key.1)),
                _ => {}
            }
        }
        assert!(differ.is_empty(), "{label}: {} outcomes differ from {TABLE}:\n{}", differ.len(), differ.join("\n"));
        f.done().await;
    }
}
