//! Demo data for a fresh local install: a few cases in each commitment mode at different
//! points of their lives, made through the engine like any real case.

use std::collections::BTreeMap;

use chrono::{NaiveTime, TimeZone, Utc};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

use crate::runtime::Engine;
use crate::store::entities::instance;
use crate::workflow::Actor;

/// Huangpu district (310101), market regulation bureau, food safety division: try
/// `pledgeflow token --role window --department 310101-SCJG`.
fn shanghai_food() -> serde_json::Value {
    json!({"region": "310101", "department": "310101-SCJG", "division": "310101-SCJG-SP"})
}

/// Staff addresses for a demo install with none configured (mail goes to .eml files there).
pub fn contacts() -> std::collections::BTreeMap<String, String> {
    ["department", "division", "supervisors", "digest"]
        .into_iter()
        .map(|r| (r.to_string(), format!("{r}@demo.pledgeflow.localhost")))
        .collect()
}

/// Seeds the demo cases unless the database already holds instances. Returns how many
/// instances it started.
pub async fn seed(engine: &Engine) -> anyhow::Result<usize> {
    if instance::Entity::find().count(&engine.db).await? > 0 {
        return Ok(0);
    }
    let window = Actor::person("demo-window-01", "window");
    let approver = Actor::person("demo-approver-01", "approver");
    let env = &engine.workflows.env;
    let today = engine.now().with_timezone(&env.tz).date_naive();
    let due_day = env.calendar.add_working_days(today, 5)?;
    let end_of_day = NaiveTime::from_hms_opt(17, 30, 0).unwrap_or_default();
    let due = env
        .tz
        .from_local_datetime(&due_day.and_time(end_of_day))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| anyhow::anyhow!("no local time {due_day} 17:30"))?;
    let deadlines = BTreeMap::from([("materials_due".to_string(), due)]);
    let materials = |deferred: &str| {
        json!([
            {"code": "M01", "name": "营业执照", "status": "provided"},
            {"code": "M02", "name": deferred, "status": "deferred"},
        ])
    };

    let mut started = 0;
    // A restaurant waiting for its fire-safety acceptance certificate.
    let ctx = json!({"scope": shanghai_food(), "applicant": {"uscc": "91310110666007217T", "name": "上海示例餐饮管理有限公司", "email": "contact@canyin.demo.pledgeflow.localhost", "mobile": "13800000001"},
        "item": {"code": "310101-FOOD-01", "name": "食品经营许可"}, "materials": materials("消防安全检查合格证明")});
    engine.start("material-deferral", ctx, deadlines.clone(), &window).await?;
    started += 1;

    // One that supplied its materials and was licensed: a supervision task is running.
    let ctx = json!({"scope": shanghai_food(), "applicant": {"uscc": "91310115591693856A", "name": "上海示例便利店有限公司", "email": "contact@bianlidian.demo.pledgeflow.localhost", "mobile": "13800000002"},
        "item": {"code": "310101-FOOD-02", "name": "食品经营许可（仅销售预包装食品）"}, "materials": materials("健康证明")});
    let case = engine.start("material-deferral", ctx, deadlines.clone(), &window).await?;
    let r = engine.fire(&case.id, "materials_complete", &window, &json!({"received": ["M02"]}), None).await?;
    let r = engine.fire(&r.instance.id, "approve", &approver, &json!({"licence_number": "JY13101010000001"}), None).await?;
    started += 1 + r.spawned.len();

    // Verification against electronic licences, one certificate could not be verified.
    let ctx = json!({"scope": {"region": "350500", "department": "350500-GA", "division": "350500-GA-ZA"}, "applicant": {"uscc": "9135052155323005XL", "name": "泉州示例旅馆有限公司", "email": "contact@lvguan.demo.pledgeflow.localhost", "mobile": "13800000003"},
        "item": {"code": "350500-HOTEL-01", "name": "旅馆业特种行业许可"}});
    let case = engine.start("material-verification", ctx, BTreeMap::new(), &window).await?;
    engine.fire(&case.id, "unverifiable", &window, &json!({"missing": ["卫生许可证"]}), None).await?;
    started += 1;

    // Decided on the spot, checked afterwards.
    let ctx = json!({"scope": {"region": "350100", "department": "350100-XC", "division": "350100-XC-CB"}, "applicant": {"uscc": "91350100M000100Y43", "name": "福州示例印刷有限公司", "email": "contact@yinshua.demo.pledgeflow.localhost", "mobile": "13800000004"},
        "item": {"code": "350100-PRINT-01", "name": "印刷经营许可（包装装潢）"}});
    let case = engine.start("after-the-fact-review", ctx, BTreeMap::new(), &window).await?;
    let r = engine.fire(&case.id, "decide_on_spot", &window, &json!({"licence_number": "YS35010020260001"}), None).await?;
    started += 1 + r.spawned.len();
    Ok(started)
}
