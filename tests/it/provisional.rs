//! Deadlines reaching a year whose official holiday notice is not on file are counted on the
//! statutory holidays and marked provisional; when the notice is loaded they are recomputed:
//! a later one is applied, audited and told to the applicant; an earlier one never.

use chrono::{DateTime, TimeZone, Utc};
use pledgeflow::{clock::ManualClock, runtime::Engine, workflow::Actor};
use serde_json::json;

use crate::helpers::{backends, engine_with, repo, workflows_dir};

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
}

/// The official 2027 notice lands (with these holidays) and the server restarts on it.
async fn publish_2027(db: &crate::helpers::TestDb, dir: &tempfile::TempDir, clock: &ManualClock, off_days: &[&str]) -> Engine {
    let days: Vec<String> = off_days.iter().map(|d| format!("\"{d}\"")).collect();
    let text = format!("[years.2027]\nsource = \"test notice\"\noff_days = [{}]\nmakeup_workdays = []\n", days.join(", "));
    std::fs::write(dir.path().join("calendars/cn-2027.toml"), text).unwrap();
    engine_with(db, dir.path().to_path_buf(), clock).await
}

/// The shipped definitions as (file name, text), for a workflows folder of a test's own.
fn shipped_definitions() -> Vec<(String, String)> {
    std::fs::read_dir(repo().join("workflows"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().to_string(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// A verification case whose unverifiable material must be supplied within 5 working days of now.
/// The shipped definitions in a folder of their own, and an engine on them whose clock stands at
/// Monday 28 December 2026, 10:00 (2027's notice not yet on file).
async fn at_year_end(db: &crate::helpers::TestDb) -> (tempfile::TempDir, ManualClock, Engine) {
    let defs = shipped_definitions();
    let defs: Vec<(&str, &str)> = defs.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    let dir = workflows_dir(&defs);
    let clock = ManualClock::at(local(2026, 12, 28, 10, 0));
    let e = engine_with(db, dir.path().to_path_buf(), &clock).await;
    (dir, clock, e)
}

async fn awaiting_supply(e: &Engine) -> String {
    let w = Actor::person("w", "window");
    let ctx = json!({"applicant": {"name": "泉州示例旅馆有限公司", "email": "a@example.cn"}, "item": {"code": "X", "name": "旅馆业特种行业许可"}});
    let id = e.start("material-verification", ctx, Default::default(), &w).await.unwrap().id;
    e.fire(&id, "unverifiable", &w, &json!({"missing": ["卫生许可证"]}), None).await.unwrap();
    id
}

/// (name, due, provisional) of the pending timers.
async fn timers(e: &Engine, id: &str) -> Vec<(String, DateTime<Utc>, i64)> {
    e.timers(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.status == "pending")
        .map(|t| (t.name, pledgeflow::store::instances::from_ms(t.due_at), t.provisional))
        .collect()
}

async fn events(e: &Engine, id: &str) -> Vec<String> {
    e.history(id).await.unwrap().into_iter().map(|h| h.event).collect()
}

#[tokio::test]
async fn provisional_deadlines_are_recomputed_once_the_official_year_is_loaded_never_earlier() {
    for db in backends().await {
        let (dir, clock, e) = at_year_end(&db).await;

        // Monday 28 December 2026 + 5 working days, on the statutory 2027 (1 January off).
        let december = awaiting_supply(&e).await;
        assert_eq!(
            timers(&e, &december).await,
            [("reminder".into(), local(2027, 1, 4, 9, 0), 1), ("expiry".into(), local(2027, 1, 5, 17, 30), 1)]
        );
        // Wednesday 3 February 2027: Spring Festival on the statute is 5–8 February with the
        // weekend days made up on the 9th and 10th.
        clock.set(local(2027, 2, 3, 10, 0));
        let february = awaiting_supply(&e).await;
        assert_eq!(
            timers(&e, &february).await,
            [("reminder".into(), local(2027, 2, 15, 9, 0), 1), ("expiry".into(), local(2027, 2, 16, 17, 30), 1)]
        );

        // The official notice arrives: 4 January is also off; Spring Festival 5–8 February only.
        let e = publish_2027(&db, &dir, &clock, &["2027-01-01", "2027-01-04", "2027-02-05", "2027-02-08"]).await;
        // Later on the official calendar: applied, audited; the applicant told of the deadline
        // only — a moved reminder is no moved deadline (issue #18, finding 6).
        assert_eq!(
            timers(&e, &december).await,
            [("reminder".into(), local(2027, 1, 5, 9, 0), 0), ("expiry".into(), local(2027, 1, 6, 17, 30), 0)]
        );
        assert_eq!(events(&e, &december).await, ["start", "unverifiable", "reminder_recounted", "deadline_extended"]);
        let told = pledgeflow::store::outbox::list(&e.db, None, Some(&december), 0, 10).await.unwrap().0;
        let told: Vec<_> = told.iter().filter(|o| o.topic == "deadline_extended" && o.recipient == "applicant").collect();
        assert_eq!(told.len(), 1, "one notice, of the deadline");
        let payload: serde_json::Value = serde_json::from_str(&told[0].payload).unwrap();
        assert_eq!((&payload["payload"]["timer"], &payload["payload"]["was_local"], &payload["payload"]["now_local"]),
            (&serde_json::json!("expiry"), &serde_json::json!("2027年1月5日（星期二）17:30"), &serde_json::json!("2027年1月6日（星期三）17:30")), "its true old and new dates");
        // Earlier on the official calendar (9–10 February are working days): kept as told.
        assert_eq!(
            timers(&e, &february).await,
            [("reminder".into(), local(2027, 2, 15, 9, 0), 0), ("expiry".into(), local(2027, 2, 16, 17, 30), 0)]
        );
        assert_eq!(events(&e, &february).await, ["start", "unverifiable"]);

        // Loading again changes nothing; every chain still verifies.
        let e = engine_with(&db, dir.path().to_path_buf(), &clock).await;
        assert_eq!(events(&e, &december).await.len(), 4);
        let broken = pledgeflow::store::verify::verify_all(&e.db, &e.workflows.audit).await.unwrap();
        assert!(broken.breaks.is_empty(), "{broken:?}");
        db.cleanup().await;
    }
}

/// A deferral case opened on 2026-12-28 for 5 working days: due 2027-01-05 on the statutory
/// holidays alone (29, 30, 31 December, then 4 and 5 January), so provisional; with the engine,
/// its workflows folder and clock, and a window officer of its department.
async fn deferral_into_2027(db: &crate::helpers::TestDb) -> (Engine, tempfile::TempDir, ManualClock, pledgeflow::store::InstanceRecord, pledgeflow::auth::Claims) {
    use pledgeflow::window::{catalogue, intake, registry};
    let (dir, clock, e) = at_year_end(db).await;
    let now = e.now();
    registry::put_region(&e.db, "R", "区").await.unwrap();
    registry::put_department(&e.db, "D", "R", "局", "approval", Some("d@example.gov.cn")).await.unwrap();
    let spec: catalogue::ItemSpec = serde_json::from_value(json!({
        "legal_basis": "法", "reform_mode": "实行告知承诺", "conditions": ["条件"],
        "materials": [{"code": "M1", "name": "健康证明", "deferrable": true}],
        "modes": {"deferral_max_working_days": 10}, "commitment_template": "承诺于{{ due }}前补齐{% if due_provisional %}（按法定节假日推算，待确认）{% endif %}。", "commitment_version": 1,
        "breach_consequences": "撤销", "supervision": null, "licence_pattern": "X{seq}"})).unwrap();
    catalogue::put(&e.db, "I", "许可", "D", false, &spec, "admin", now).await.unwrap();
    let applicant = registry::Applicant {
        uscc: "91310110666007217T".into(), name: "甲".into(), legal_representative: "张".into(),
        email: Some("a@example.cn".into()), mobile: None, credit_tier: "A".into(), dishonest: 0,
    };
    registry::put_applicant(&e.db, &e.workflows.audit, &applicant, now).await.unwrap();
    let mut window = pledgeflow::auth::Claims::new("w", vec!["window".into()], now, chrono::Duration::hours(1));
    window.department = Some("D".into());
    let input = intake::OpenCaseInput {
        applicant_uscc: applicant.uscc.clone(),
        item_code: "I".into(),
        mode: catalogue::Mode::Deferral,
        materials: vec![intake::MaterialInput { code: "M1".into(), status: intake::MaterialStatus::Deferred, file_ref: None, licence_number: None }],
        deferral_working_days: Some(5),
        signed_by: "张".into(),
    };
    // 29, 30, 31 December, then (1 January off) 4 and 5 January 2027: provisional.
    let case = intake::open_case(&e, &window, input).await.unwrap();
    (e, dir, clock, case, window)
}

#[tokio::test]
async fn a_deferral_deadline_given_at_intake_in_a_provisional_year_is_recounted_and_its_timers_follow() {
    for db in backends().await {
        let (e, dir, clock, case, _) = deferral_into_2027(&db).await;
        assert_eq!(case.deadlines["materials_due"], local(2027, 1, 5, 17, 30));
        assert_eq!(case.context["provisional_deadlines"], json!(["materials_due"]));
        assert_eq!(case.context["commitment"]["text"], "承诺于2027年1月5日（星期二）17:30前补齐（按法定节假日推算，待确认）。", "the letter says the date is provisional");
        assert_eq!(
            timers(&e, &case.id).await,
            [("reminder".into(), local(2027, 1, 4, 9, 0), 1), ("expiry".into(), local(2027, 1, 5, 17, 30), 0)]
        );

        let e = publish_2027(&db, &dir, &clock, &["2027-01-01", "2027-01-04"]).await;
        let after = e.instance(&case.id).await.unwrap().unwrap();
        assert_eq!(after.deadlines["materials_due"], local(2027, 1, 6, 17, 30), "one more holiday: a day later");
        assert_eq!(after.context["provisional_deadlines"], json!([]));
        assert_eq!(
            timers(&e, &case.id).await,
            [("reminder".into(), local(2027, 1, 5, 9, 0), 0), ("expiry".into(), local(2027, 1, 6, 17, 30), 0)],
            "the reminder and the expiry follow the deadline"
        );
        assert_eq!(events(&e, &case.id).await, ["start", "deadline_extended"], "one audited change");
        let told = pledgeflow::store::outbox::list(&e.db, None, Some(&case.id), 0, 10).await.unwrap().0;
        assert_eq!(told.iter().filter(|o| o.topic == "deadline_extended").count(), 1);
        db.cleanup().await;
    }
}

/// The provisional mark is typed (issue #18, finding 6): `Deadline.provisional` and
/// `Timer.provisional`, true while counted over a year without its notice — and false once the
/// notice confirms the deadline as counted, though nothing moved (it used to stay marked).
#[tokio::test]
async fn a_deadline_is_provisional_until_the_notice_confirms_it_even_when_it_does_not_move() {
    for db in backends().await {
        let (e, dir, clock, case, window) = deferral_into_2027(&db).await;
        let query = "query($id: ID!) { workflowInstance(id: $id) { deadlines { name at provisional } timers { name provisional } } }";
        let data = tempfile::tempdir().unwrap();
        let marks = |e: Engine| {
            let (window, id, data) = (window.clone(), case.id.clone(), data.path().to_path_buf());
            async move {
                let api = crate::helpers::Api::new(e, &data);
                let r = api.ok(&window, query, json!({"id": id})).await;
                let i = &r["workflowInstance"];
                let deadline = (i["deadlines"][0]["name"].clone(), i["deadlines"][0]["provisional"].clone());
                let timers: Vec<(String, bool)> =
                    i["timers"].as_array().unwrap().iter().map(|t| (t["name"].as_str().unwrap().to_string(), t["provisional"].as_bool().unwrap())).collect();
                (deadline, timers)
            }
        };
        let (deadline, timers) = marks(e).await;
        assert_eq!(deadline, (json!("materials_due"), json!(true)));
        assert_eq!(timers, [("reminder".to_string(), true), ("expiry".to_string(), false)]);
        // The notice adds no holiday in that span: the deadline stands, and is no longer provisional.
        let e = publish_2027(&db, &dir, &clock, &["2027-01-01"]).await;
        assert_eq!(e.instance(&case.id).await.unwrap().unwrap().deadlines["materials_due"], local(2027, 1, 5, 17, 30));
        let after = e.instance(&case.id).await.unwrap().unwrap();
        assert_eq!(after.context["provisional_deadlines"], json!([]), "what the reminder reads is cleared too");
        assert_eq!(events(&e, &case.id).await, ["start", "deadline_confirmed"], "with its one event");
        let (deadline, timers) = marks(e).await;
        assert_eq!(deadline, (json!("materials_due"), json!(false)));
        assert_eq!(timers, [("reminder".to_string(), false), ("expiry".to_string(), false)]);
        db.cleanup().await;
    }
}

/// A period the procedure counts (the response to a notice) over a provisional year is kept and
/// recounted like any deadline: later on the official calendar, it moves and its timer follows.
#[tokio::test]
async fn a_response_period_counted_over_a_provisional_year_is_recounted_and_its_timer_follows() {
    for db in backends().await {
        let (e, dir, clock, case, _) = deferral_into_2027(&db).await;
        clock.set(local(2027, 1, 5, 17, 30));
        e.sweep("s").await.unwrap();
        let noticed = e.instance(&case.id).await.unwrap().unwrap();
        assert_eq!(noticed.state, "breach_noticed");
        // 6, 7, 8, 11, 12 January on the statute alone.
        assert_eq!(noticed.deadlines["response_due"], local(2027, 1, 12, 17, 30));
        assert!(noticed.context["provisional_deadlines"].as_array().unwrap().contains(&json!("response_due")), "{}", noticed.context);
        // The notice makes 7 January a holiday too: the period ends a working day later.
        let e = publish_2027(&db, &dir, &clock, &["2027-01-01", "2027-01-07"]).await;
        let after = e.instance(&case.id).await.unwrap().unwrap();
        assert_eq!(after.deadlines["response_due"], local(2027, 1, 13, 17, 30));
        assert_eq!(after.deadlines["materials_due"], local(2027, 1, 5, 17, 30), "the materials' deadline stood");
        assert_eq!(after.context["provisional_deadlines"], json!([]));
        let pending: Vec<_> = timers(&e, &case.id).await.into_iter().filter(|(n, _, _)| n == "response_limit").collect();
        assert_eq!(pending, [("response_limit".to_string(), local(2027, 1, 13, 17, 30), 0)]);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn an_imported_year_is_put_in_force_at_the_next_sweep_without_a_restart() {
    for db in backends().await {
        let (dir, clock, e) = at_year_end(&db).await;
        let december = awaiting_supply(&e).await;
        assert_eq!(timers(&e, &december).await[1], ("expiry".into(), local(2027, 1, 5, 17, 30), 1));
        assert!(e.workflows.env.calendar.get().is_provisional_year(2027));

        // `pledgeflow calendar import` writes the notice to the database; the running engine's
        // next sweep puts it in force and recounts, with no restart.
        let text = "[years.2027]\nsource = \"test notice\"\noff_days = [\"2027-01-01\", \"2027-01-04\"]\nmakeup_workdays = []\n";
        pledgeflow::store::calendar_files::put(&e.db, "cn-2027.toml", text, pledgeflow::clock::Clock::now(&clock)).await.unwrap();
        e.sweep("w").await.unwrap();
        assert!(!e.workflows.env.calendar.get().is_provisional_year(2027), "2027 is official now");
        assert_eq!(
            timers(&e, &december).await,
            [("reminder".into(), local(2027, 1, 5, 9, 0), 0), ("expiry".into(), local(2027, 1, 6, 17, 30), 0)]
        );
        assert_eq!(events(&e, &december).await, ["start", "unverifiable", "reminder_recounted", "deadline_extended"]);
        // Another sweep changes nothing; a restart reads the same calendar.
        e.sweep("w").await.unwrap();
        let e = engine_with(&db, dir.path().to_path_buf(), &clock).await;
        assert!(!e.workflows.env.calendar.get().is_provisional_year(2027));
        assert_eq!(events(&e, &december).await.len(), 4);
        db.cleanup().await;
    }
}
