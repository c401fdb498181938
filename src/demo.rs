//! Demo data for a fresh local install: a district's organisation, a catalogue of five
//! approval items, applicants of every credit tier, electronic licences, and cases in every
//! mode at different points of their lives — all made through the window's own functions,
//! like real ones. Try `pledgeflow token --role window --department 310101-SCJG`.

use chrono::Duration;
use serde_json::json;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::auth::Claims;
use crate::runtime::Engine;
use crate::store::entities::instance;
use crate::supervision::tasks::{self, Finding, Inspection};
use crate::window::catalogue::{self, ItemSpec, Linkage, MaterialSpec, Mode, ModeLimits};
use crate::window::due_process::{self, RevocationDecision};
use crate::window::ordinary::{self, AcceptanceDecision};
use crate::window::bundle::{self, BundleItemInput, EstablishmentInput, FieldValueInput, OpenBundleInput};
use crate::window::intake::{self, MaterialInput, MaterialStatus, OpenCaseInput, ReturnCategory};
use crate::window::registry::{self, Applicant, ElectronicLicence};

const REGION: &str = "310101";

/// Staff addresses for a demo install with none configured (mail goes to .eml files there).
pub fn contacts() -> std::collections::BTreeMap<String, String> {
    ["department", "division", "supervisors", "digest"]
        .into_iter()
        .map(|r| (r.to_string(), format!("{r}@demo.pledgeflow.localhost")))
        .collect()
}

fn staff(sub: &str, role: &str, department: &str) -> Claims {
    let mut c = Claims::new(sub, vec![role.into()], chrono::Utc::now(), Duration::hours(1));
    c.region = Some(REGION.into());
    c.department = Some(department.into());
    c
}

fn staff_in_division(sub: &str, role: &str) -> Claims {
    let mut c = staff(sub, role, "310101-SCJG");
    c.division = Some("310101-SCJG-SP".into());
    c
}

/// The supervision task a licensed case handed over.
async fn child_task(engine: &Engine, case: &str) -> anyhow::Result<String> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let task = instance::Entity::find()
        .filter(instance::Column::ParentId.eq(case))
        .one(&engine.db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("case {case} handed over no task"))?;
    Ok(task.id)
}

fn limits(deferral: Option<i64>, licence_first: bool, verification: bool, after_the_fact: bool) -> ModeLimits {
    ModeLimits { deferral_max_working_days: deferral, deferral_licence_first: licence_first, verification, after_the_fact }
}

fn material(code: &str, name: &str, deferrable: bool, licence_kind: Option<&str>) -> MaterialSpec {
    MaterialSpec { code: code.into(), name: name.into(), deferrable, licence_kind: licence_kind.map(Into::into) }
}

const LETTER: &str = "告知承诺书（第{{ item.code }}号事项）\n\
本人{{ signed_by }}，作为{{ applicant.name }}（统一社会信用代码 {{ applicant.uscc }}）的法定代表人或受托人，\
已知悉{{ item.name }}的设定依据（{{ item.legal_basis }}）、许可条件和应提交的材料，现承诺：\n\
{% for c in item.conditions %}{{ loop.index }}. {{ c }}\n{% endfor %}\
{% if due %}尚未提交的材料将于{{ due }}前补齐{% if due_provisional %}（该日期按法定节假日推算，以国务院办公厅公布的节假日安排为准；如有顺延，审批部门将另行告知）{% endif %}。\n{% endif %}\
所填写的信息和提交的材料真实、有效；如有不实或未履行承诺，自愿承担{{ item.breach_consequences }}。\n\
未履行承诺的，审批部门将书面告知拟作出的决定及其事实、理由，本人可在收到告知之日起{{ due_process.response_working_days }}个工作日内陈述、申辩；\
{% if due_process.decision_required %}审批部门在听取陈述、申辩后作出决定。{% else %}期满未陈述、申辩的，由系统代审批部门依法作出决定并告知审批部门。{% endif %}\n\
承诺人：{{ signed_by }}　　{{ signed_at }}";

struct ItemDef {
    code: &'static str,
    name: &'static str,
    department: &'static str,
    division: &'static str,
    excluded: bool,
    basis: &'static str,
    conditions: &'static [&'static str],
    materials: Vec<MaterialSpec>,
    modes: ModeLimits,
    pattern: &'static str,
    /// The department decides every intended revocation itself (no revocation on silence).
    decision_required: bool,
    /// The tiers that get a routine supervision task at licensing (None: every tier).
    routine_tiers: Option<&'static [&'static str]>,
    /// Working days a rectification order gives.
    rectification: i64,
    /// The application form's fields (code, name): a bundle asks a shared code once.
    fields: &'static [(&'static str, &'static str)],
    /// The promised time limit; none for a simple item (one working day).
    time_limit: Option<i64>,
    valid_years: Option<i64>,
}

fn items() -> Vec<ItemDef> {
    let licence = || material("M01", "营业执照", false, Some("business_licence"));
    vec![
        ItemDef {
            code: "310101-FOOD-01",
            name: "食品经营许可",
            department: "310101-SCJG",
            division: "310101-SCJG-SP",
            excluded: false,
            basis: "《中华人民共和国食品安全法》第三十五条",
            conditions: &["经营场所面积不少于 10 平方米，与有毒有害场所距离 25 米以上", "从业人员持有效健康证明", "设有食品安全管理人员和管理制度"],
            materials: vec![licence(), material("M02", "从业人员健康证明", true, None), material("M03", "经营场所平面布局图", true, None)],
            modes: limits(Some(20), false, true, true),
            pattern: "JY1310101{year}{seq:05}",
            rectification: 20,
            fields: &[("premises_address", "住所（经营场所）"), ("business_area", "经营面积（平方米）"), ("food_safety_manager", "食品安全管理人员")],
            time_limit: None,
            valid_years: Some(5),
            decision_required: false,
            routine_tiers: None,
        },
        ItemDef {
            code: "310101-HYG-01",
            name: "公共场所卫生许可",
            department: "310101-WJW",
            division: "310101-WJW-WSJD",
            excluded: false,
            basis: "《公共场所卫生管理条例》第八条",
            conditions: &["通风、采光、照明符合卫生标准", "从业人员持有效健康合格证明"],
            materials: vec![licence(), material("M02", "卫生检测报告", true, None), material("M03", "从业人员健康合格证明", true, None)],
            modes: limits(Some(10), false, false, true),
            pattern: "沪卫公字[{year}]第{seq:06}号",
            rectification: 30,
            fields: &[("premises_address", "住所（经营场所）"), ("business_area", "经营面积（平方米）"), ("hygiene_manager", "卫生管理人员")],
            time_limit: None,
            valid_years: Some(4),
            decision_required: true,
            routine_tiers: None,
        },
        ItemDef {
            code: "310101-TZSB-01",
            name: "特种设备使用登记",
            department: "310101-SCJG",
            division: "310101-SCJG-TZ",
            excluded: true,
            basis: "《中华人民共和国特种设备安全法》第三十三条",
            conditions: &["设备经监督检验合格", "配备持证作业人员"],
            materials: vec![licence(), material("M02", "监督检验证书", false, None)],
            modes: limits(None, false, false, false),
            pattern: "TZ{year}{seq:06}",
            rectification: 15,
            fields: &[],
            time_limit: Some(15),
            valid_years: None,
            decision_required: false,
            routine_tiers: None,
        },
        ItemDef {
            code: "310101-YPLS-01",
            name: "药品零售企业许可",
            department: "310101-SCJG",
            division: "310101-SCJG-YP",
            excluded: false,
            basis: "《中华人民共和国药品管理法》第五十一条",
            conditions: &["配备依法经过资格认定的执业药师", "营业场所面积不少于 40 平方米"],
            materials: vec![licence(), material("M02", "执业药师注册证", false, Some("pharmacist_registration"))],
            modes: limits(None, false, true, false),
            pattern: "沪DA{year}{seq:04}",
            rectification: 20,
            fields: &[("premises_address", "住所（经营场所）"), ("business_area", "经营面积（平方米）"), ("pharmacist", "执业药师")],
            time_limit: Some(3),
            valid_years: Some(5),
            decision_required: false,
            routine_tiers: None,
        },
        ItemDef {
            code: "310101-HY-01",
            name: "道路货物运输经营许可",
            department: "310101-JTW",
            division: "310101-JTW-YG",
            excluded: false,
            basis: "《中华人民共和国道路运输条例》第二十一条",
            conditions: &["有与经营业务相适应并经检测合格的车辆", "有符合规定条件的驾驶人员"],
            materials: vec![licence(), material("M02", "车辆行驶证", true, None), material("M03", "驾驶人员从业资格证", true, None)],
            modes: limits(Some(15), true, false, true),
            pattern: "沪交运管许可黄字{year}{seq:06}号",
            rectification: 40,
            fields: &[("premises_address", "住所（经营场所）"), ("vehicles", "车辆数")],
            time_limit: Some(5),
            valid_years: Some(4),
            decision_required: false,
            routine_tiers: Some(&["B", "C", "D"]),
        },
    ]
}

/// Seeds the demo unless the database already holds instances. Returns how many instances
/// it started.
pub async fn seed(engine: &Engine) -> anyhow::Result<usize> {
    if instance::Entity::find().count(&engine.db).await? > 0 {
        return Ok(0);
    }
    let db = &engine.db;
    let now = engine.now();
    registry::put_region(db, REGION, "上海市黄浦区").await?;
    for (code, name, side, divisions) in [
        ("310101-SCJG", "黄浦区市场监督管理局", "approval", vec![("310101-SCJG-SP", "食品经营监管科"), ("310101-SCJG-TZ", "特种设备安全监察科"), ("310101-SCJG-YP", "药品监管科")]),
        ("310101-WJW", "黄浦区卫生健康委员会", "approval", vec![("310101-WJW-WSJD", "卫生监督所")]),
        ("310101-JTW", "黄浦区交通委员会", "approval", vec![("310101-JTW-YG", "运输管理科")]),
        // The comprehensive window (综合窗口) that takes bundled applications (一照通行).
        ("310101-ZWZX", "黄浦区政务服务中心", "service", vec![]),
    ] {
        registry::put_department(db, code, REGION, name, side, Some(&format!("{}@demo.pledgeflow.localhost", code.to_lowercase()))).await?;
        for (d, n) in divisions {
            registry::put_division(db, d, code, n, Some(&format!("{}@demo.pledgeflow.localhost", d.to_lowercase()))).await?;
        }
    }
    for (id, name, department, division, role) in [
        ("window-00", "冯综窗", "310101-ZWZX", None, "window"),
        ("window-01", "李窗口", "310101-SCJG", None, "window"),
        ("approver-01", "王审批", "310101-SCJG", None, "approver"),
        ("window-02", "赵窗口", "310101-WJW", None, "window"),
        ("approver-02", "钱审批", "310101-WJW", None, "approver"),
        ("window-03", "吴窗口", "310101-JTW", None, "window"),
        ("approver-03", "郑审批", "310101-JTW", None, "approver"),
        ("head-01", "黄局长", "310101-SCJG", None, "department_head"),
        ("head-02", "何主任", "310101-WJW", None, "department_head"),
        ("divadmin-sp", "孙科长", "310101-SCJG", Some("310101-SCJG-SP"), "division_admin"),
        ("inspector-sp-1", "周监管", "310101-SCJG", Some("310101-SCJG-SP"), "inspector"),
    ] {
        registry::put_staff(db, id, name, department, division, &[role.to_string()], Some(&format!("{id}@demo.pledgeflow.localhost")), now).await?;
    }
    // The region's own officers: the regional admin and the supervisor belong to no department.
    for (id, name, role) in [("admin-01", "陈管理", "regional_admin"), ("supervisor-01", "林督查", "supervisor")] {
        let record = registry::StaffRecord {
            id: id.into(),
            name: name.into(),
            region: REGION.into(),
            department: None,
            division: None,
            roles: vec![role.into()],
            email: Some(format!("{id}@demo.pledgeflow.localhost")),
            active: true,
        };
        registry::put_staff_in(db, &record, now).await?;
    }
    // Market regulation registers enterprises in the district, so it deregisters them too.
    registry::set_registration_authority(db, "310101-SCJG", true).await?;
    for def in items() {
        registry::put_supervision_item(db, &format!("SUP-{}", def.code), &format!("{}事中事后监管", def.name), def.department, def.division).await?;
        let spec = ItemSpec {
            legal_basis: def.basis.into(),
            reform_mode: "实行告知承诺".into(),
            conditions: def.conditions.iter().map(|c| c.to_string()).collect(),
            materials: def.materials,
            modes: def.modes,
            commitment_template: LETTER.into(),
            commitment_version: 1,
            breach_consequences: "撤销许可、记入信用记录并向社会公开的法律责任".into(),
            supervision: Some(Linkage { department: def.department.into(), division: def.division.into(), supervision_item: format!("SUP-{}", def.code), rectification_working_days: def.rectification, routine_tiers: def.routine_tiers.map(|t| t.iter().map(|x| x.to_string()).collect()) }),
            licence_pattern: def.pattern.into(),
            fields: def.fields.iter().map(|(code, name)| catalogue::FormFieldSpec { code: code.to_string(), name: name.to_string() }).collect(),
            time_limit_working_days: def.time_limit,
            licence_valid_years: def.valid_years,
            due_process: catalogue::DueProcess { decision_required: def.decision_required, ..Default::default() },
        };
        catalogue::put(db, def.code, def.name, def.department, def.excluded, &spec, "demo", now).await?;
    }
    let applicants = [
        ("91310110666007217T", "上海示例餐饮管理有限公司", "张伟", "A", false),
        ("91110000600037341L", "上海示例货运有限公司", "刘洋", "A", false),
        ("9135052155323005XL", "上海示例大药房有限公司", "陈静", "B", false),
        ("91350100M000100Y43", "上海示例浴室管理有限公司", "杨帆", "C", false),
        ("91310115591693856A", "上海示例便利店有限公司", "黄磊", "D", true),
    ];
    for (n, (uscc, name, rep, tier, dishonest)) in applicants.iter().enumerate() {
        let a = Applicant {
            uscc: uscc.to_string(),
            name: name.to_string(),
            legal_representative: rep.to_string(),
            email: Some(format!("contact{n}@applicant.demo.pledgeflow.localhost")),
            mobile: Some(format!("1380000000{n}")),
            credit_tier: tier.to_string(),
            dishonest: i64::from(*dishonest),
        };
        registry::put_applicant(db, &engine.workflows.audit, &a, now).await?;
        registry::adopt(db, &engine.workflows.audit, uscc, REGION).await?;
        registry::put_electronic_licence(
            db,
            &ElectronicLicence { holder_uscc: uscc.to_string(), kind: "business_licence".into(), number: format!("3101010000{n}{n}{n}{n}{n}"), valid_until: "2045-12-31".into(), revoked: 0 },
        )
        .await?;
    }
    registry::put_electronic_licence(
        db,
        &ElectronicLicence { holder_uscc: "9135052155323005XL".into(), kind: "pharmacist_registration".into(), number: "ZY2019000123".into(), valid_until: "2025-06-30".into(), revoked: 0 },
    )
    .await?;

    let scjg_window = staff("window-01", "window", "310101-SCJG");
    let scjg_approver = staff("approver-01", "approver", "310101-SCJG");
    let wjw_window = staff("window-02", "window", "310101-WJW");
    let jtw_window = staff("window-03", "window", "310101-JTW");
    let jtw_approver = staff("approver-03", "approver", "310101-JTW");
    let m = |code: &str, status: MaterialStatus, number: Option<&str>| MaterialInput {
        code: code.into(),
        status,
        file_ref: (status == MaterialStatus::Provided).then(|| format!("DOC-{code}")),
        licence_number: number.map(Into::into),
    };
    let open = |uscc: &str, item: &str, mode: Mode, materials: Vec<MaterialInput>, days: Option<i64>| OpenCaseInput {
        applicant_uscc: uscc.into(),
        item_code: item.into(),
        mode,
        materials,
        deferral_working_days: days,
        signed_by: "法定代表人".into(),
    };
    use MaterialStatus::{Deferred, Provided, ToVerify};
    let food = "310101-FOOD-01";
    let mut started = 0;
    // A restaurant waiting for its health certificates and floor plan.
    intake::open_case(engine, &scjg_window, open("91310110666007217T", food, Mode::Deferral, vec![m("M01", Provided, None), m("M02", Deferred, None), m("M03", Deferred, None)], Some(5))).await?;
    started += 1;
    // One that supplied them in time and was licensed: its supervision task is running.
    let case = intake::open_case(engine, &scjg_window, open("91310110666007217T", food, Mode::Deferral, vec![m("M01", Provided, None), m("M02", Provided, None), m("M03", Deferred, None)], Some(10))).await?;
    intake::submit_material(engine, &scjg_window, &case.id, "M03", "DOC-M03-2").await?;
    intake::issue_licence(engine, &scjg_approver, &case.id, None).await?;
    started += 2;
    // Verification: the business licence checks out, the pharmacist's registration has expired.
    intake::open_case(engine, &scjg_window, open("9135052155323005XL", "310101-YPLS-01", Mode::Verification, vec![m("M01", ToVerify, Some("310101000022222")), m("M02", ToVerify, Some("ZY2019000123"))], None)).await?;
    started += 1;
    // Verified entirely: under review.
    intake::open_case(engine, &scjg_window, open("91310110666007217T", food, Mode::Verification, vec![m("M01", ToVerify, Some("310101000000000")), m("M02", Provided, None), m("M03", Provided, None)], None)).await?;
    started += 1;
    // A bath house's hygiene licence on deferral, with the health office.
    intake::open_case(engine, &wjw_window, open("91350100M000100Y43", "310101-HYG-01", Mode::Deferral, vec![m("M01", Provided, None), m("M02", Deferred, None), m("M03", Provided, None)], Some(10))).await?;
    started += 1;
    // Road freight decided on the spot, checked afterwards: an A-tier carrier gets no routine
    // task (the item's policy), it is left to the random draw.
    let case = intake::open_case(engine, &jtw_window, open("91110000600037341L", "310101-HY-01", Mode::AfterTheFact, vec![m("M01", Provided, None), m("M02", Provided, None), m("M03", Provided, None)], None)).await?;
    intake::issue_licence(engine, &jtw_approver, &case.id, None).await?;
    started += 1;
    // Road freight licence-first: licensed, but may not operate until the drivers' certificates are in.
    let case = intake::open_case(engine, &jtw_window, open("91110000600037341L", "310101-HY-01", Mode::Deferral, vec![m("M01", Provided, None), m("M02", Provided, None), m("M03", Deferred, None)], Some(10))).await?;
    intake::issue_licence(engine, &jtw_approver, &case.id, None).await?;
    started += 1;
    // The ends a case can come to, and the supervision states between.
    let actor = |c: &Claims| crate::workflow::Actor::api(c.sub.clone(), c.roles.clone());
    let all_provided = || vec![m("M01", Provided, None), m("M02", Provided, None), m("M03", Provided, None)];
    let on_the_spot = || open("91310110666007217T", food, Mode::AfterTheFact, all_provided(), None);
    // Withdrawn by the applicant before the materials came.
    let case = intake::open_case(engine, &scjg_window, open("91310110666007217T", food, Mode::Deferral, vec![m("M01", Provided, None), m("M02", Deferred, None), m("M03", Provided, None)], Some(5))).await?;
    engine.fire(&case.id, "withdraw", &actor(&scjg_window), &json!({"reason": "申请人决定暂不开业"}), None).await?;
    // Refused after verification.
    let case = intake::open_case(engine, &scjg_window, open("91310110666007217T", food, Mode::Verification, vec![m("M01", ToVerify, Some("310101000000000")), m("M02", Provided, None), m("M03", Provided, None)], None)).await?;
    engine.fire(&case.id, "refuse", &actor(&scjg_approver), &json!({"reason": "经营场所与平面图不符"}), None).await?;
    // Revoked by the approving department (a revocation on the applicant's credit).
    let case = intake::open_case(engine, &scjg_window, on_the_spot()).await?;
    intake::issue_licence(engine, &scjg_approver, &case.id, None).await?;
    // The department's revocation is a procedure: the notice, the statement recorded at the
    // window, the department's decision.
    engine.fire(&case.id, "revoke", &actor(&scjg_approver), &json!({"reason": "以欺骗手段取得许可"}), None).await?;
    due_process::state_case(engine, &scjg_window, &case.id, "申请人对许可材料的真实性无异议").await?;
    due_process::decide(engine, &scjg_approver, &case.id, RevocationDecision::Revoke, "以欺骗手段取得许可，陈述理由不成立").await?;
    started += 4; // three cases, and the revoked one's task
    // Two supervision tasks under way: one kept (its case closes once the outbox delivers the
    // signal, within seconds of serving), one in rectification.
    let divadmin = staff_in_division("divadmin-sp", "division_admin");
    let inspector = staff_in_division("inspector-sp-1", "inspector");
    for kept in [true, false] {
        let case = intake::open_case(engine, &scjg_window, on_the_spot()).await?;
        intake::issue_licence(engine, &scjg_approver, &case.id, None).await?;
        let task_id = child_task(engine, &case.id).await?;
        tasks::assign(engine, &divadmin, &task_id, &["inspector-sp-1".to_string()]).await?;
        let conditions = items().into_iter().find(|i| i.code == food).map(|i| i.conditions).unwrap_or_default();
        let findings = conditions
            .iter()
            .map(|c| Finding { condition: c.to_string(), kept: kept || !c.contains("健康证明"), note: (!kept).then(|| "两名员工未持健康证明".to_string()) })
            .collect();
        let today = engine.now().with_timezone(&engine.workflows.env.tz).date_naive();
        let visit = Inspection { inspected_on: today, findings, evidence: vec!["现场照片 IMG-0001".into()], note: None };
        tasks::record_inspection(engine, &inspector, &task_id, &visit).await?;
        let order = (!kept).then_some("限期补办从业人员健康证明");
        tasks::feed_back(engine, &inspector, &task_id, order).await?;
        started += 2;
    }
    // 一照通行: a restaurant with a pharmacy counter being established applies once at the
    // comprehensive window; its business licence is registered, and the operating licences run
    // in parallel at the market regulator and the health office.
    let bundle = bundle::open_bundle(engine, &staff("window-00", "window", "310101-ZWZX"), demo_bundle()).await?;
    let registration = bundle::children(db, &bundle.id).await?.into_iter().find_map(|c| c.instance_id).ok_or_else(|| anyhow::anyhow!("the demo bundle opened no registration"))?;
    bundle::register(engine, &scjg_approver, &registration, None).await?;
    // The bundle and its registration; the operating licences start once the outbox delivers
    // the registration's signal (within seconds of serving).
    started += 2;
    // The ordinary procedure (一般程序): special-equipment use registration is excluded from
    // commitment approval. One application waits for the acceptance decision, one is accepted and
    // under review on the legal clock (the item's 15 working days).
    let tzsb = "310101-TZSB-01";
    intake::open_case(engine, &scjg_window, open("91310110666007217T", tzsb, Mode::Ordinary, vec![m("M01", Provided, None), m("M02", Provided, None)], None)).await?;
    let case = intake::open_case(engine, &scjg_window, open("91310110666007217T", tzsb, Mode::Ordinary, vec![m("M01", Provided, None), m("M02", Provided, None)], None)).await?;
    ordinary::decide_acceptance(engine, &scjg_window, &case.id, AcceptanceDecision::Accept, None, &[], None).await?;
    started += 2;
    // A return at intake: the officer forgot to collect the floor plan.
    intake::return_application(engine, &scjg_window, food, Some("91310110666007217T"), None, ReturnCategory::OfficerError, "漏收经营场所平面布局图").await?;
    Ok(started)
}

/// The demo's bundled application: an enterprise being established, its business licence, and
/// food business, public-place hygiene and pharmacy retail in their own modes, on one form.
pub fn demo_bundle() -> OpenBundleInput {
    let m = |code: &str| MaterialInput { code: code.into(), status: MaterialStatus::Provided, file_ref: Some(format!("BDL-{code}")), licence_number: None };
    let field = |code: &str, value: &str| FieldValueInput { code: code.into(), value: value.into() };
    OpenBundleInput {
        applicant_uscc: None,
        establishment: Some(EstablishmentInput {
            reserved_name: "上海示例小馆餐饮有限公司".into(),
            legal_representative: "许晴".into(),
            legal_representative_id: "310101198503150029".into(),
            registration_department: "310101-SCJG".into(),
            email: Some("xuqing@applicant.demo.pledgeflow.localhost".into()),
            mobile: Some("13800000009".into()),
        }),
        items: vec![
            BundleItemInput { item_code: "310101-FOOD-01".into(), mode: Mode::AfterTheFact, materials: vec![m("M02"), m("M03")], deferral_working_days: None },
            BundleItemInput { item_code: "310101-HYG-01".into(), mode: Mode::AfterTheFact, materials: vec![m("M02"), m("M03")], deferral_working_days: None },
            BundleItemInput { item_code: "310101-YPLS-01".into(), mode: Mode::Verification, materials: vec![m("M02")], deferral_working_days: None },
        ],
        fields: vec![
            field("premises_address", "上海市黄浦区示例路 1 号"),
            field("business_scope", "餐饮服务；药品零售"),
            field("registered_capital", "50"),
            field("business_area", "120"),
            field("food_safety_manager", "许晴"),
            field("hygiene_manager", "许晴"),
            field("pharmacist", "周明"),
        ],
        signed_by: "许晴".into(),
    }
}
