//! The random inspection draw against the database: shares per tier, inspectors of the linked
//! division, one task per pick, the draw recorded; no case with an open task, no enterprise
//! inspected for the item within the period (查重对碰), routine tasks only for the item's tiers.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use pledgeflow::{
    auth::Claims,
    clock::ManualClock,
    supervision::{draw::Sampling, draws, tasks},
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

/// An application for item I decided on the spot, its one material provided.
fn on_the_spot(applicant: String) -> intake::OpenCaseInput {
    intake::OpenCaseInput {
        applicant_uscc: applicant,
        item_code: "I".into(),
        mode: catalogue::Mode::AfterTheFact,
        materials: vec![intake::MaterialInput { code: "M1".into(), status: intake::MaterialStatus::Provided, file_ref: Some("f".into()), licence_number: None }],
        deferral_working_days: None,
        signed_by: "张".into(),
    }
}

#[tokio::test]
async fn the_draw_takes_each_tiers_share_never_twice_and_leaves_out_what_was_just_inspected() {
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
            "supervision": {"department": "D", "division": "D-S", "supervision_item": "S", "routine_tiers": ["D"]}, "licence_pattern": "L{seq:04}"})).unwrap();
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
                let case = intake::open_case(&e, &window, on_the_spot(code)).await.unwrap();
                intake::issue_licence(&e, &approver, &case.id, None).await.unwrap();
                tiers.insert(case.id, tier);
            }
        }
        // Only tier D gets a routine task at licensing (the item's policy); those cases are not
        // drawn again while their task is open.
        let tasks_of = |case: String| {
            let db = e.db.clone();
            async move {
                use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
                use pledgeflow::store::entities::instance;
                instance::Entity::find().filter(instance::Column::ParentId.eq(case)).count(&db).await.unwrap()
            }
        };
        for (case, tier) in &tiers {
            assert_eq!(tasks_of(case.clone()).await, u64::from(*tier == "D"), "{tier}: a routine task only where the item wants one");
        }
        let ratios: BTreeMap<String, f64> = [("A", 0.1), ("B", 0.2), ("C", 0.5), ("D", 1.0)].into_iter().map(|(t, r)| (t.to_string(), r)).collect();
        let sampling = Sampling { ratios, no_repeat_days: 180 };
        let first = draws::run(&e, &sampling, 42, "supervisor-1", "R").await.unwrap();
        assert_eq!(first.pool, 18, "the two D cases hold their routine task");
        let count = |t: &str| first.picks.iter().filter(|(p, _)| p.tier == t).count();
        assert_eq!((count("A"), count("B"), count("C"), count("D")), (1, 1, 2, 0), "10%, 20%, 50% rounded up");
        for (pick, task) in &first.picks {
            assert_eq!(tiers[&pick.case_id], pick.tier);
            assert!(matches!(pick.inspector.as_deref(), Some("insp-1" | "insp-2")));
            let task = e.instance(task).await.unwrap().unwrap();
            assert_eq!((task.definition_name.as_str(), task.parent_id.as_deref()), ("supervision-task", Some(pick.case_id.as_str())));
            assert_eq!(task.scope.division.as_deref(), Some("D-S"), "the linked division's task");
            assert_eq!(e.history(&task.id).await.unwrap().len(), 1, "created with one audit event");
        }
        // A second draw never picks a case whose task is open: one open task per case.
        let again = draws::run(&e, &sampling, 42, "supervisor-1", "R").await.unwrap();
        assert_eq!(again.pool, 14);
        assert!(again.picks.iter().all(|(p, _)| first.picks.iter().all(|(q, _)| q.case_id != p.case_id)), "no case drawn twice");
        for (pick, _) in first.picks.iter().chain(&again.picks) {
            assert_eq!(tasks_of(pick.case_id.clone()).await, 1, "one task per case");
        }
        let recorded = draws::list(&e.db, "R", 10).await.unwrap();
        assert_eq!(recorded.len(), 2);
        assert!(recorded.iter().all(|r| r.seed == 42));
        assert_eq!(recorded.iter().filter(|r| r.pool.contains(&first.picks[0].0.case_id)).count(), 1, "in the first draw's pool only");

        // 查重对碰: an enterprise inspected for the item is left out of its draws for the period,
        // on its other cases too.
        let (pick, task) = &first.picks[0];
        let mut admin = Claims::new("da", vec!["division_admin".into()], now, chrono::Duration::hours(1));
        (admin.department, admin.division) = (Some("D".into()), Some("D-S".into()));
        let mut inspector = Claims::new(pick.inspector.as_deref().unwrap(), vec!["inspector".into()], now, chrono::Duration::hours(1));
        (inspector.department, inspector.division) = (Some("D".into()), Some("D-S".into()));
        tasks::assign(&e, &admin, task, &[inspector.sub.clone()]).await.unwrap();
        let visit = tasks::Inspection {
            inspected_on: now.with_timezone(&chrono_tz::Asia::Shanghai).date_naive(),
            findings: vec![tasks::Finding { condition: "条件".into(), kept: true, note: None }],
            evidence: vec![],
            note: None,
        };
        tasks::record_inspection(&e, &inspector, task, &visit).await.unwrap();
        let holder = e.instance(&pick.case_id).await.unwrap().unwrap().scope.applicant_uscc.unwrap();
        let second = intake::open_case(&e, &window, on_the_spot(holder)).await.unwrap();
        intake::issue_licence(&e, &approver, &second.id, None).await.unwrap();
        let in_pool = |r: &draws::DrawReport| r.picks.iter().any(|(p, _)| p.case_id == second.id);
        let everyone = Sampling { ratios: [("A", 1.0)].into_iter().map(|(t, r)| (t.to_string(), r)).collect(), no_repeat_days: 180 };
        let r = draws::run(&e, &everyone, 7, "supervisor-1", "R").await.unwrap();
        assert!(!in_pool(&r), "inspected for this item within 180 days: left out");
        clock.advance(chrono::Duration::days(181));
        let r = draws::run(&e, &everyone, 7, "supervisor-1", "R").await.unwrap();
        assert!(in_pool(&r), "the period over: drawn again");
        db.cleanup().await;
    }
}
