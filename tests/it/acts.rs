//! One path per act (issue #16): an event with a typed act is refused on the generic
//! `fireEvent` path, and a caller's payload carries only the keys the event policy declares —
//! on every shipped version of every definition, and over the real binary.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use pledgeflow::workflow::{engine, policy::EventRule, policy::PolicyRefusal, Actor, TransitionError};
use serde_json::{json, Value};

use crate::helpers::repo;
use crate::hostile::{quiet_demo, settled, snapshot};
use crate::http::{graphql_as, token_as};

/// What the hostile approver sent in the issue: every key the system owns.
fn forged() -> Value {
    json!({"licence_number": "SP3101012026000001", "supervision": {"division": "310101-SCJG-YP"},
           "scope": {"region": "999999"}, "applicant": {"email": "attacker@example.com"},
           "received": ["M02"], "reason": "x"})
}

#[test]
fn every_shipped_version_refuses_typed_act_events_and_system_keys_on_the_generic_path() {
    let loaded = pledgeflow::workflow::load_dir(&repo().join("workflows")).unwrap_or_else(|p| panic!("{p:?}"));
    let env = engine::TimeEnv { calendar: loaded.calendar.into(), tz: chrono_tz::Asia::Shanghai };
    let now = Utc::now();
    let mut tried: BTreeMap<(String, String), usize> = BTreeMap::new();
    for def in loaded.workflows.all() {
        let deadlines = def.deadlines.iter().map(|d| (d.clone(), now + Duration::days(30))).collect();
        for t in def.transitions.iter().filter(|t| t.roles.iter().any(|r| r != "system")) {
            for from in &t.from {
                let context = json!({});
                let snapshot = engine::Snapshot { state: from, context: &context, deadlines: &deadlines };
                let caller = Actor::api("someone", t.roles.clone());
                let refused = engine::fire(def, &snapshot, &t.on, &caller, &forged(), now, &env)
                    .expect_err(&format!("{} v{}: {} from {from} with forged keys", def.name, def.version, t.on));
                let expected = match def.acts.rule(&t.on) {
                    Some(EventRule::Via(act)) => TransitionError::Policy(PolicyRefusal::TypedActOnly { event: t.on.clone(), act: act.clone() }),
                    // The first key in order that the system owns.
                    Some(EventRule::Payload(_)) => TransitionError::Policy(PolicyRefusal::SystemOwnedKey { key: "applicant".into() }),
                    None => panic!("{} v{}: people may fire {} but the policy has no rule", def.name, def.version, t.on),
                };
                assert_eq!(refused, expected, "{} v{}: {} from {from}", def.name, def.version, t.on);
                // The typed act itself reaches the transition (its own checks are the rule).
                if let Some(EventRule::Via(_)) = def.acts.rule(&t.on) {
                    let act = Actor::act("someone", t.roles.clone(), "typedAct");
                    match engine::fire(def, &snapshot, &t.on, &act, &forged(), now, &env) {
                        Err(TransitionError::Policy(p)) => panic!("{} v{}: the typed act was refused by the policy: {p}", def.name, def.version),
                        _ => {}
                    }
                }
                *tried.entry((def.name.clone(), t.on.clone())).or_default() += 1;
            }
        }
    }
    // The issue's bypasses, on every version that has them.
    for (name, event) in [
        ("material-deferral", "approve"),
        ("material-deferral", "materials_complete"),
        ("material-deferral-licence-first", "approve"),
        ("material-verification", "approve"),
        ("after-the-fact-review", "decide_on_spot"),
        ("business-registration", "approve"),
        ("supervision-task", "rectified"),
        ("supervision-task", "still_failing"),
    ] {
        let versions = loaded.workflows.all().filter(|d| d.name == name && d.events.iter().any(|e| e == event)).count();
        assert!(versions > 0 && tried.get(&(name.to_string(), event.to_string())).copied().unwrap_or(0) >= versions, "{name}/{event}: {tried:?}");
    }
}

#[test]
fn a_caller_may_fire_an_open_event_with_its_declared_reason_only() {
    let loaded = pledgeflow::workflow::load_dir(&repo().join("workflows")).unwrap();
    let env = engine::TimeEnv { calendar: loaded.calendar.into(), tz: chrono_tz::Asia::Shanghai };
    let def = loaded.workflows.latest("material-deferral").unwrap();
    let now = Utc::now();
    let deadlines = BTreeMap::from([("materials_due".to_string(), now + Duration::days(3))]);
    let context = json!({"applicant": {"email": "owner@example.com"}});
    let snapshot = engine::Snapshot { state: "under_review", context: &context, deadlines: &deadlines };
    let approver = Actor::api("approver-01", vec!["approver".into()]);
    let refused = engine::fire(&def, &snapshot, "refuse", &approver, &json!({"reason": "经营场所与平面图不符"}), now, &env).unwrap();
    assert_eq!(refused.to, "refused");
    assert_eq!(refused.context["applicant"]["email"], "owner@example.com", "nothing but the reason is merged");
    assert_eq!(refused.context["reason"], "经营场所与平面图不符");
    for (payload, expected) in [
        (json!({}), PolicyRefusal::BadValue { key: "reason".into(), reason: "is required".into() }),
        (json!({"reason": "x", "opinion": "y"}), PolicyRefusal::UndeclaredKey { event: "refuse".into(), key: "opinion".into(), declared: "reason".into() }),
        (json!({"reason": "x", "scope": {}}), PolicyRefusal::SystemOwnedKey { key: "scope".into() }),
    ] {
        let r = engine::fire(&def, &snapshot, "refuse", &approver, &payload, now, &env);
        assert_eq!(r.unwrap_err(), TransitionError::Policy(expected), "{payload}");
    }
}

/// The issue's four bypasses over HTTP against `serve --demo`: each refused with FORBIDDEN and
/// reason TYPED_ACT_ONLY naming the act, and nothing in any table changed.
#[tokio::test]
async fn the_issue_bypasses_through_fire_event_are_refused_over_http_and_change_nothing() {
    let demo = quiet_demo().await;
    let (base, url, http, db) = (&demo.base, &demo.url, &demo.http, &demo.db);
    let first = |sql: &str| {
        let db = db.clone();
        let sql = sql.to_string();
        async move {
            let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql.clone())).await.unwrap();
            row.unwrap_or_else(|| panic!("the demo has no row for {sql}")).try_get::<String>("", "id").unwrap()
        }
    };
    use sea_orm::ConnectionTrait;
    let in_food = "department = '310101-SCJG'";
    let deferral = first(&format!("SELECT id FROM workflow_instances WHERE definition_name = 'material-deferral' AND {in_food} ORDER BY id LIMIT 1")).await;
    let spot = first(&format!("SELECT id FROM workflow_instances WHERE definition_name = 'after-the-fact-review' AND {in_food} ORDER BY id LIMIT 1")).await;
    let task = first("SELECT id FROM workflow_instances WHERE definition_name = 'supervision-task' AND division = '310101-SCJG-SP' ORDER BY id LIMIT 1").await;
    let food = ["--department", "310101-SCJG", "--region", "310101"];
    let approver = token_as(url, "approver-01", &[&["--role", "approver"][..], &food].concat());
    let window = token_as(url, "window-01", &[&["--role", "window"][..], &food].concat());
    let inspector = token_as(url, "inspector-sp-1", &[&["--role", "inspector", "--division", "310101-SCJG-SP"][..], &food].concat());
    let fire = "mutation($i: FireEventInput!) { fireEvent(input: $i) { seq instance { state } } }";
    let before = settled(db).await;
    for (token, id, event, act) in [
        (&approver, &deferral, "approve", "issueLicence"),
        (&window, &spot, "decide_on_spot", "issueLicence"),
        (&window, &deferral, "materials_complete", "submitMaterial"),
        (&inspector, &task, "rectified", "recordReinspection"),
        (&inspector, &task, "still_failing", "recordReinspection"),
    ] {
        let r = graphql_as(http, base, token, json!({"query": fire, "variables": {"i": {"instanceId": id, "event": event, "payload": forged()}}})).await;
        let ext = &r["errors"][0]["extensions"];
        assert_eq!((ext["code"].as_str(), ext["reason"].as_str(), ext["act"].as_str()), (Some("FORBIDDEN"), Some("TYPED_ACT_ONLY"), Some(act)), "{event}: {r}");
        assert_eq!(r["data"], Value::Null, "{r}");
    }
    assert_eq!(snapshot(db).await, before, "a refused event changed nothing");
}
