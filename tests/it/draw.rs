//! The random inspection draw against the database: shares per tier, inspectors of the linked
//! division, one task per pick, the draw recorded, the same seed drawing the same cases.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use pledgeflow::{
    auth::Claims,
    clock::ManualClock,
    supervision::draws,
    window::{catalogue, intake, registry},
};
use serde_json::json;

use crate::helpers::{backends, engine};

/// A valid unified social credit code for a 17-character body (the check character computed).
fn uscc(body: &str) -> String {
    "0123456789ABCDEFGHJKLMNPQRTUWXY"
        .chars()
        .map(|c| format!("{body}{c}"))
        .find(|code| pledgeflow::domain::ids::uscc(code).is_ok())
        .unwrap()
}

#[tokio::test]
async fn the_draw_takes_each_tiers_share_records_its_seed_and_repeats_exactly() {
    for db in backends().await {
        let clock = ManualClock::at(chrono_tz::Asia::Shanghai.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap().with_timezone(&Utc));
        let e = engine(&db, &clock).await;
        let now = e.now();
        registry::put_region(&e.db, "R", "区").await.unwrap();
        registry::put_department(&e.db, "D", "R", "局", "approval", None).await.unwrap();
        registry::put_division(&e.db, "D-S", "D", "监管科", None).await.unwrap();
        for id in ["insp-1", "insp-2"] {
            registry::put_staff(&e.db, id, id, "D", Some("D-S"), &["inspector".to_string()], None, now).await.unwrap();
        }
        let spec: catalogue::ItemSpec = serde_json::from_value(json!({
            "legal_basis": "法", "reform_mode": "实行告知承诺", "conditions": ["条件"],
            "materials": [{"code": "M1", "name": "营业执照"}], "modes": {"after_the_fact": true},
            "commitment_template": "承诺", "commitment_version": 1, "breach_consequences": "撤销",
            "supervision": {"department": "D", "division": "D-S", "supervision_item": "S"}, "licence_pattern": "L{seq:04}"})).unwrap();
        catalogue::put(&e.db, "I", "许可", "D", false, &spec, "admin", now).await.unwrap();
        let mut window = Claims::new("w", vec!["window".into()], now, chrono::Duration::hours(1));
        window.department = Some("D".into());
        let mut approver = Claims::new("a", vec!["approver".into()], now, chrono::Duration::hours(1));
        approver.department = Some("D".into());
        let mut tiers = BTreeMap::new();
        for (tier, n) in [("A", 10), ("B", 5), ("C", 3), ("D", 2)] {
            for i in 0..n {
                let code = uscc(&format!("91310000{tier}{i:08}"));
                let applicant = registry::Applicant { uscc: code.clone(), name: format!("{tier}{i}"), legal_representative: "张".into(), email: None, mobile: None, credit_tier: tier.into(), dishonest: 0 };
                registry::put_applicant(&e.db, &e.workflows.audit, &applicant, now).await.unwrap();
                let input = intake::OpenCaseInput {
                    applicant_uscc: code,
                    item_code: "I".into(),
                    mode: catalogue::Mode::AfterTheFact,
                    materials: vec![intake::MaterialInput { code: "M1".into(), status: intake::MaterialStatus::Provided, file_ref: Some("f".into()), licence_number: None }],
                    deferral_working_days: None,
                    signed_by: "张".into(),
                };
                let case = intake::open_case(&e, &window, input).await.unwrap();
                intake::issue_licence(&e, &approver, &case.id, None).await.unwrap();
                tiers.insert(case.id, tier);
            }
        }
        let ratios: BTreeMap<String, f64> = [("A", 0.1), ("B", 0.2), ("C", 0.5), ("D", 1.0)].into_iter().map(|(t, r)| (t.to_string(), r)).collect();
        let first = draws::run(&e, &ratios, 42, "supervisor-1", "R").await.unwrap();
        assert_eq!(first.pool, 20);
        let count = |t: &str| first.picks.iter().filter(|(p, _)| p.tier == t).count();
        assert_eq!((count("A"), count("B"), count("C"), count("D")), (1, 1, 2, 2), "10%, 20%, 50% rounded up, and all of D");
        for (pick, task) in &first.picks {
            assert_eq!(tiers[&pick.case_id], pick.tier);
            assert!(matches!(pick.inspector.as_deref(), Some("insp-1" | "insp-2")));
            let task = e.instance(task).await.unwrap().unwrap();
            assert_eq!((task.definition_name.as_str(), task.parent_id.as_deref()), ("supervision-task", Some(pick.case_id.as_str())));
            assert_eq!(task.scope.division.as_deref(), Some("D-S"), "the linked division's task");
            assert_eq!(e.history(&task.id).await.unwrap().len(), 1, "created with one audit event");
        }
        let again = draws::run(&e, &ratios, 42, "supervisor-1", "R").await.unwrap();
        let cases = |r: &draws::DrawReport| r.picks.iter().map(|(p, _)| (p.case_id.clone(), p.inspector.clone())).collect::<Vec<_>>();
        assert_eq!(cases(&again), cases(&first), "the same seed over the same pool draws the same cases and inspectors");
        let recorded = draws::list(&e.db, "R", 10).await.unwrap();
        assert_eq!(recorded.len(), 2);
        assert!(recorded.iter().all(|r| r.seed == 42 && r.pool.contains(&first.picks[0].0.case_id)));
        db.cleanup().await;
    }
}
