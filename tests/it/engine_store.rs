//! The engine on real databases: one transaction per event, typed refusals that write
//! nothing, optimistic concurrency, timers armed and cancelled, definitions pinned.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use pledgeflow::{
    clock::ManualClock,
    runtime::Engine,
    store::{entities, StoreError},
    workflow::{Actor, TransitionError},
};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{json, Value};

use crate::helpers::{backends, engine, engine_with, monday_morning, workflows_dir};

fn window() -> Actor {
    Actor::person("w-01", "window")
}
fn approver() -> Actor {
    Actor::person("a-01", "approver")
}

fn deferral_context() -> Value {
    json!({"materials": [{"code": "M1", "status": "provided"}, {"code": "M2", "status": "deferred"}]})
}

/// Row counts of every table, to prove a refused event wrote nothing.
async fn counts(e: &Engine) -> [u64; 4] {
    [
        entities::instance::Entity::find().count(&e.db).await.unwrap(),
        entities::event::Entity::find().count(&e.db).await.unwrap(),
        entities::timer::Entity::find().count(&e.db).await.unwrap(),
        entities::outbox::Entity::find().count(&e.db).await.unwrap(),
    ]
}

async fn deferral_case(e: &Engine) -> String {
    let tz = chrono_tz::Asia::Shanghai;
    // Due Monday 2026-11-30 17:30: the reminder belongs on Friday the 27th at 09:00.
    let due = tz.with_ymd_and_hms(2026, 11, 30, 17, 30, 0).unwrap().with_timezone(&Utc);
    let deadlines = BTreeMap::from([("materials_due".to_string(), due)]);
    e.start("material-deferral", deferral_context(), deadlines, &window()).await.unwrap().id
}

#[tokio::test]
async fn a_case_runs_from_intake_to_licence_with_one_audit_event_per_transition() {
    for db in backends().await {
        let clock = ManualClock::at(monday_morning());
        let e = engine(&db, &clock).await;
        let id = deferral_case(&e).await;

        let timers = e.timers(&id).await.unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        let reminder = timers.iter().find(|t| t.name == "reminder").unwrap();
        assert_eq!(reminder.due_at, tz.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap().timestamp_millis(), "{}", db.label);
        assert_eq!(timers.len(), 2);

        clock.advance(Duration::hours(1));
        let r = e.fire(&id, "materials_complete", &window(), &json!({"received": ["M2"]}), Some(1)).await.unwrap();
        assert_eq!((r.instance.state.as_str(), r.seq), ("under_review", 2));
        let timers = e.timers(&id).await.unwrap();
        assert_eq!(timers.iter().filter(|t| t.status == "cancelled").count(), 2, "leaving a state cancels its timers");
        assert_eq!(timers.iter().filter(|t| t.status == "pending").map(|t| t.name.as_str()).collect::<Vec<_>>(), ["decision_limit"]);

        let r = e.fire(&id, "approve", &approver(), &json!({"licence_number": "JY1"}), None).await.unwrap();
        assert_eq!(r.instance.state, "licensed");
        assert_eq!(r.instance.context["licence_number"], "JY1");
        assert_eq!(r.spawned.len(), 1, "approval spawns the supervision task");
        let task = e.instance(&r.spawned[0]).await.unwrap().unwrap();
        assert_eq!((task.definition_name.as_str(), task.state.as_str()), ("supervision-task", "notified"));
        assert_eq!(task.parent_id.as_deref(), Some(id.as_str()));

        let history = e.history(&id).await.unwrap();
        let steps: Vec<_> = history.iter().map(|h| (h.event.as_str(), h.to_state.as_str())).collect();
        assert_eq!(steps, [("start", "awaiting_materials"), ("materials_complete", "under_review"), ("approve", "licensed")]);
        let outbox = entities::outbox::Entity::find().all(&e.db).await.unwrap();
        let mut topics: Vec<_> = outbox.iter().map(|o| format!("{}:{}:{}", o.channel, o.recipient, o.topic)).collect();
        topics.sort();
        assert_eq!(topics, ["email:applicant:licensed", "email:applicant:materials_received", "webhook:supervision:archive"]);
        let report = pledgeflow::store::verify::verify_all(&e.db, &e.workflows.audit).await.unwrap();
        assert!(report.breaks.is_empty(), "{:?}", report.breaks);
        assert_eq!((report.instances, report.events), (2, 4));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn refused_events_get_typed_errors_and_write_nothing() {
    for db in backends().await {
        let clock = ManualClock::at(monday_morning());
        let e = engine(&db, &clock).await;
        let id = deferral_case(&e).await;
        let before = counts(&e).await;

        let err = e.fire(&id, "approve", &approver(), &json!({"licence_number": "X"}), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::NotAllowedInState { .. })), "{err}");
        let err = e.fire(&id, "materials_complete", &approver(), &json!({"received": ["M2"]}), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::RoleNotAllowed { .. })), "{err}");
        let err = e.fire(&id, "materials_complete", &window(), &json!({"received": []}), None).await.unwrap_err();
        assert!(matches!(&err, StoreError::Transition(TransitionError::GuardRefused { reason, .. }) if reason.contains("M2")), "{err}");
        let err = e.fire(&id, "expire", &window(), &json!({}), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::RoleNotAllowed { .. })), "only the system expires: {err}");
        let err = e.fire(&id, "teleport", &window(), &json!({}), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::UnknownEvent { .. })), "{err}");
        let err = e.fire(&id, "materials_complete", &window(), &json!([1, 2]), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Transition(TransitionError::BadPayload)), "{err}");
        let err = e.fire("no-such-id", "approve", &approver(), &json!({}), None).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err}");
        let err = e.fire(&id, "materials_complete", &window(), &json!({"received": ["M2"]}), Some(7)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { expected: 7, actual: 1, .. }), "{err}");
        let err = e.start("material-deferral", deferral_context(), BTreeMap::new(), &window()).await.unwrap_err();
        assert!(matches!(&err, StoreError::Transition(TransitionError::Timing(_))), "a deferral needs its deadline: {err}");
        let err = e.start("no-such-workflow", json!({}), BTreeMap::new(), &window()).await.unwrap_err();
        assert!(matches!(err, StoreError::UnknownDefinition { .. }), "{err}");

        assert_eq!(counts(&e).await, before, "{}: refusals wrote something", db.label);
        assert_eq!(e.instance(&id).await.unwrap().unwrap().version, 1);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn of_two_concurrent_firings_on_one_instance_exactly_one_wins() {
    for db in backends().await {
        let clock = ManualClock::at(monday_morning());
        let e = engine(&db, &clock).await;
        for round in 0..5 {
            let id = deferral_case(&e).await;
            let seen = e.instance(&id).await.unwrap().unwrap().version;
            let fire = |e: Engine, id: String, who: &'static str| {
                tokio::spawn(async move {
                    e.fire(&id, "withdraw", &Actor::person(who, "window"), &json!({"by": who}), Some(seen)).await
                })
            };
            let (a, b) = tokio::join!(fire(e.clone(), id.clone(), "w-a"), fire(e.clone(), id.clone(), "w-b"));
            let results = [a.unwrap(), b.unwrap()];
            let wins = results.iter().filter(|r| r.is_ok()).count();
            let conflicts = results.iter().filter(|r| matches!(r, Err(StoreError::Conflict { .. }))).count();
            assert_eq!((wins, conflicts), (1, 1), "{} round {round}: {results:?}", db.label);
            let history = e.history(&id).await.unwrap();
            assert_eq!(history.len(), 2, "one start, one withdrawal");
            let winner = results.iter().find_map(|r| r.as_ref().ok()).unwrap();
            let recorded: Value = serde_json::from_str(&history[1].payload).unwrap();
            assert_eq!(recorded["by"], winner.instance.context["by"], "the audit event is the winner's");
        }
        assert!(pledgeflow::store::verify::verify_all(&e.db, &e.workflows.audit).await.unwrap().breaks.is_empty());
        db.cleanup().await;
    }
}

const V1: &str = r#"
name = "pinning"
version = 1
initial = "open"
events = ["close"]
[states.open]
[states.closed]
final = true
[[transitions]]
from = "open"
on = "close"
to = "closed"
roles = ["window"]
"#;

#[tokio::test]
async fn a_running_instance_keeps_the_definition_version_it_started_on() {
    for db in backends().await {
        let clock = ManualClock::at(monday_morning());
        let v1_dir = workflows_dir(&[("pinning.toml", V1)]);
        let e1 = engine_with(&db, v1_dir.path().to_path_buf(), &clock).await;
        let old = e1.start("pinning", json!({}), BTreeMap::new(), &window()).await.unwrap();

        // Version 2 lets only approvers close.
        let v2 = V1.replace("version = 1", "version = 2").replace("roles = [\"window\"]", "roles = [\"approver\"]");
        let v2_dir = workflows_dir(&[("pinning.toml", &v2)]);
        let e2 = engine_with(&db, v2_dir.path().to_path_buf(), &clock).await;
        let new = e2.start("pinning", json!({}), BTreeMap::new(), &window()).await.unwrap();
        assert_eq!((old.definition_version, new.definition_version), (1, 2));
        assert!(e2.fire(&new.id, "close", &window(), &json!({}), None).await.is_err(), "v2 rules for the new one");
        let closed = e2.fire(&old.id, "close", &window(), &json!({}), None).await.unwrap();
        assert_eq!(closed.instance.state, "closed", "v1 rules for the old one");

        // The same name and version with another text is refused at deployment.
        let changed = V1.replace("[states.open]", "[states.open]\ntitle = \"changed\"");
        let changed_dir = workflows_dir(&[("pinning.toml", &changed)]);
        let err = pledgeflow::app::build_engine(
            &crate::helpers::config_for(&db, changed_dir.path().to_path_buf()),
            std::sync::Arc::new(clock.clone()),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("give it a new version"), "{err}");
        db.cleanup().await;
    }
}

/// Processes starting together on a database that lacks a version all deploy it: the ones
/// that find it stored meanwhile go on starting instead of failing on the unique key.
#[tokio::test]
async fn processes_starting_together_deploy_the_definitions_once_and_all_start() {
    for db in backends().await {
        let conn = pledgeflow::store::connect(&db.url, 1).await.unwrap();
        pledgeflow::store::migrate(&conn).await.unwrap();
        let starts = (0..6).map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move {
                let conn = pledgeflow::store::connect(&url, 1).await.unwrap();
                let mut set = pledgeflow::workflow::load_dir(&crate::helpers::repo().join("workflows")).unwrap().workflows;
                pledgeflow::store::definitions::deploy(&conn, &mut set, 0).await
            })
        });
        for started in futures::future::join_all(starts).await {
            assert!(started.unwrap().is_ok(), "{}: a start failed deploying", db.label);
        }
        let files = std::fs::read_dir(crate::helpers::repo().join("workflows")).unwrap().filter(|f| f.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml")).count();
        assert_eq!(entities::definition::Entity::find().count(&conn).await.unwrap() as usize, files);
        db.cleanup().await;
    }
}
