//! Time acting: due timers fired by sweeps with the clock moved, exactly once, also when
//! sweeps repeat, overlap, or a sweeper dies holding claims.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use pledgeflow::{
    clock::ManualClock,
    runtime::Engine,
    store::{entities, timers},
    workflow::Actor,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::helpers::{backends, engine};

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
}

async fn case_due(e: &Engine, due: DateTime<Utc>) -> String {
    let ctx = json!({"materials": [{"code": "M2", "status": "deferred"}]});
    let deadlines = BTreeMap::from([("materials_due".to_string(), due)]);
    e.start("material-deferral", ctx, deadlines, &Actor::person("w", "window")).await.unwrap().id
}

async fn events_of(e: &Engine, id: &str) -> Vec<String> {
    e.history(id).await.unwrap().into_iter().map(|h| h.event).collect()
}

async fn outbox_topics(e: &Engine, id: &str) -> Vec<String> {
    let mut t: Vec<String> = entities::outbox::Entity::find()
        .filter(entities::outbox::Column::InstanceId.eq(id))
        .all(&e.db)
        .await
        .unwrap()
        .into_iter()
        .map(|o| format!("{}:{}:{}", o.channel, o.recipient, o.topic))
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn reminder_is_fired_the_working_day_before_the_deadline_and_expiry_at_it() {
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        // Due Monday 12 October: the working day before is Saturday the 10th, a 调休 working day.
        let makeup = case_due(&e, local(2026, 10, 12, 17, 30)).await;
        // Due Thursday 8 October: 1–7 October are holidays, so the reminder is on 30 September.
        let holiday = case_due(&e, local(2026, 10, 8, 17, 30)).await;

        clock.set(local(2026, 9, 30, 8, 59));
        assert_eq!(e.sweep("w1").await.unwrap().fired, 0);
        clock.set(local(2026, 9, 30, 9, 0));
        assert_eq!(e.sweep("w1").await.unwrap().fired, 1);
        assert_eq!(events_of(&e, &holiday).await, ["start", "remind"]);
        assert_eq!(events_of(&e, &makeup).await, ["start"]);

        clock.set(local(2026, 10, 8, 17, 29));
        assert_eq!(e.sweep("w1").await.unwrap().fired, 0);
        clock.set(local(2026, 10, 8, 17, 30));
        assert_eq!(e.sweep("w1").await.unwrap().fired, 1);
        assert_eq!(events_of(&e, &holiday).await, ["start", "remind", "expire"]);

        clock.set(local(2026, 10, 10, 9, 0));
        assert_eq!(e.sweep("w1").await.unwrap().fired, 1);
        assert_eq!(events_of(&e, &makeup).await, ["start", "remind"]);
        assert_eq!(outbox_topics(&e, &makeup).await, ["email:applicant:deferral_reminder", "sms:applicant:deferral_reminder"]);

        for _ in 0..3 {
            assert_eq!(e.sweep("w1").await.unwrap().fired, 0, "a repeated sweep fires nothing again");
        }
        clock.set(local(2026, 10, 12, 17, 30));
        assert_eq!(e.sweep("w1").await.unwrap().fired, 1);
        assert_eq!(e.sweep("w2").await.unwrap().fired, 0);
        assert_eq!(events_of(&e, &makeup).await, ["start", "remind", "expire"]);
        let inst = e.instance(&makeup).await.unwrap().unwrap();
        assert_eq!(inst.state, "breach_noticed", "a notice and the period to state the case come first");
        assert!(!outbox_topics(&e, &makeup).await.contains(&"webhook:credit:breach".to_string()));
        // Silent to the period's end: ended on the department's behalf, the breach recorded.
        clock.set(inst.deadlines["response_due"]);
        e.sweep("w1").await.unwrap();
        assert_eq!(e.instance(&makeup).await.unwrap().unwrap().state, "revoked");
        assert!(outbox_topics(&e, &makeup).await.contains(&"webhook:credit:breach".to_string()));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn overlapping_sweeps_fire_each_due_timer_once() {
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 11, 2, 10, 0));
        let e = engine(&db, &clock).await;
        let mut ids = Vec::new();
        for _ in 0..40 {
            ids.push(case_due(&e, local(2026, 11, 10, 17, 30)).await);
        }
        clock.set(local(2026, 11, 9, 9, 30));
        let sweeps: Vec<_> = (0..4)
            .map(|i| {
                let e = e.clone();
                tokio::spawn(async move { e.sweep(&format!("sweeper-{i}")).await.unwrap() })
            })
            .collect();
        let mut fired = 0;
        for s in sweeps {
            fired += s.await.unwrap().fired;
        }
        assert_eq!(fired, 40, "{}", db.label);
        for id in &ids {
            assert_eq!(events_of(&e, id).await, ["start", "remind"], "{}", db.label);
            assert_eq!(outbox_topics(&e, id).await.len(), 2);
        }
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_dead_sweepers_claims_are_retaken_after_the_lease() {
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 11, 2, 10, 0));
        let e = engine(&db, &clock).await;
        let id = case_due(&e, local(2026, 11, 10, 17, 30)).await;
        clock.set(local(2026, 11, 9, 9, 30));
        // A sweeper claims the reminder and dies before firing it.
        let claimed = timers::claim_due(&e.db, "dead", e.now(), Duration::minutes(5), 100).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(e.sweep("alive").await.unwrap().fired, 0, "claimed and the lease still runs");
        clock.advance(Duration::minutes(6));
        assert_eq!(e.sweep("alive").await.unwrap().fired, 1);
        assert_eq!(events_of(&e, &id).await, ["start", "remind"]);
        // The dead sweeper coming back cannot fire it a second time.
        let again = timers::fire_claimed(&e.db, &e.workflows, &claimed[0], "dead", e.now()).await.unwrap();
        assert_eq!(again, timers::Fired::Stale);
        assert_eq!(events_of(&e, &id).await, ["start", "remind"]);
        let pending = entities::timer::Entity::find()
            .filter(entities::timer::Column::Status.eq("pending"))
            .count(&e.db)
            .await
            .unwrap();
        assert_eq!(pending, 1, "only the expiry is still pending");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn a_refused_timer_is_kept_as_failed_and_the_rest_of_its_batch_fires() {
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 11, 2, 10, 0));
        let e = engine(&db, &clock).await;
        let mut ids = Vec::new();
        for _ in 0..3 {
            ids.push(case_due(&e, local(2026, 11, 10, 17, 30)).await);
        }
        // The middle case's reminder names an event its state does not allow (a broken row).
        sea_orm::ConnectionTrait::execute_unprepared(&e.db, &format!("UPDATE workflow_timers SET event = 'approve' WHERE instance_id = '{}' AND name = 'reminder'", ids[1]))
            .await
            .unwrap();
        clock.set(local(2026, 11, 9, 9, 30));
        let report = e.sweep("w").await.unwrap();
        assert_eq!((report.fired, report.failed), (2, 1), "{report:?}");
        assert_eq!(events_of(&e, &ids[0]).await, ["start", "remind"]);
        assert_eq!(events_of(&e, &ids[1]).await, ["start"], "nothing of the refused event was written");
        assert_eq!(events_of(&e, &ids[2]).await, ["start", "remind"]);
        assert!(outbox_topics(&e, &ids[1]).await.is_empty());
        let broken = entities::timer::Entity::find()
            .filter(entities::timer::Column::InstanceId.eq(ids[1].as_str()))
            .filter(entities::timer::Column::Name.eq("reminder"))
            .one(&e.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(broken.status, "failed");
        assert!(broken.last_error.unwrap_or_default().contains("approve"));
        assert_eq!(e.sweep("w").await.unwrap(), Default::default(), "not fired again");
        db.cleanup().await;
    }
}

/// A timer fired while another transaction holds its instance (an officer's event, another
/// process firing the expiry) waits for the instance holding nothing, rather than holding the
/// timer row that the other transaction is about to cancel: on PostgreSQL that order
/// deadlocked, aborting one of the two (found by tools/faults/run.py).
#[tokio::test]
async fn a_timer_fired_while_its_instance_is_held_waits_without_deadlock() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    for db in backends().await {
        if db.label != "postgres" {
            continue; // SQLite's write transactions are serial: no lock order to get wrong.
        }
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        let id = case_due(&e, local(2026, 10, 12, 17, 30)).await;
        clock.set(local(2026, 10, 10, 9, 1)); // the reminder is due, the expiry not yet
        let claimed = timers::claim_due(&e.db, "w1", e.now(), Duration::minutes(5), 100).await.unwrap();
        let reminder = claimed.into_iter().find(|t| t.instance_id == id).expect("the reminder is claimed");

        // The other writer holds the instance, as every event's transaction does first …
        let other = e.db.begin().await.unwrap();
        other.execute_unprepared(&format!("SELECT id FROM workflow_instances WHERE id = '{id}' FOR UPDATE")).await.unwrap();
        let firing = {
            let (db, wf, now) = (e.db.clone(), e.workflows.clone(), e.now());
            tokio::spawn(async move { timers::fire_claimed(&db, &wf, &reminder, "w1", now).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        // … then cancels the instance's pending timers, as leaving a state does.
        let cancelled = other
            .execute_unprepared(&format!("UPDATE workflow_timers SET status = 'cancelled' WHERE instance_id = '{id}' AND status = 'pending'"))
            .await;
        assert!(cancelled.is_ok(), "the other writer was aborted: {cancelled:?}");
        other.commit().await.unwrap();
        let fired = firing.await.unwrap();
        assert!(matches!(fired, Ok(timers::Fired::Stale)), "{fired:?}");
        assert_eq!(events_of(&e, &id).await, ["start"], "a cancelled reminder is not fired");
        db.cleanup().await;
    }
}

/// A timer whose instance cannot be read (here its context is no longer JSON) is kept as
/// `failed` with the reason, and the timers due beside it are fired: one bad row neither fails
/// every sweep nor holds up the batch claimed with it.
#[tokio::test]
async fn an_unreadable_instance_fails_its_timer_and_the_others_fire() {
    use sea_orm::ConnectionTrait;
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 11, 2, 10, 0));
        let e = engine(&db, &clock).await;
        let broken = case_due(&e, local(2026, 11, 10, 17, 30)).await;
        let fine = case_due(&e, local(2026, 11, 11, 17, 30)).await;
        e.db.execute_unprepared(&format!("UPDATE workflow_instances SET context = '{{' WHERE id = '{broken}'")).await.unwrap();
        clock.set(local(2026, 11, 10, 9, 30)); // both reminders due; the broken case's first
        let report = e.sweep("w1").await.expect("the sweep goes on past the bad row");
        assert_eq!((report.fired, report.failed), (1, 1), "{}: {report:?}", db.label);
        assert_eq!(events_of(&e, &fine).await, ["start", "remind"]);
        let failed = entities::timer::Entity::find()
            .filter(entities::timer::Column::InstanceId.eq(broken.as_str()))
            .filter(entities::timer::Column::Status.eq("failed"))
            .one(&e.db)
            .await
            .unwrap()
            .expect("the broken case's reminder is kept as failed");
        assert!(failed.last_error.as_deref().is_some_and(|m| m.contains("corrupt")), "{:?}", failed.last_error);
        assert_eq!(e.sweep("w1").await.unwrap(), timers::SweepReport::default(), "and is not retried");
        db.cleanup().await;
    }
}

/// One sweep over a batch that mixes what can share a transaction (reminders: rows of their own
/// instance only) with what cannot (expiries: revocation, credit, statistics): each timer fires
/// once, each instance's in due order (a reminder before its expiry, even when both are due),
/// and on PostgreSQL an instance held by another transaction is skipped by the shared
/// transaction and fired after it without holding up the rest.
#[tokio::test]
async fn a_mixed_batch_fires_each_timer_once_and_each_instances_in_order() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 11, 2, 10, 0));
        let e = engine(&db, &clock).await;
        let mut reminded = Vec::new();
        for _ in 0..20 {
            reminded.push(case_due(&e, local(2026, 11, 20, 17, 30)).await);
        }
        let mut both = Vec::new();
        for _ in 0..5 {
            both.push(case_due(&e, local(2026, 11, 12, 17, 30)).await);
        }
        let held = case_due(&e, local(2026, 11, 20, 17, 30)).await;
        // The 19th at 09:30: every reminder is due; the 12 November expiries too (the sweeper
        // was down a week).
        clock.set(local(2026, 11, 19, 9, 30));
        let other = e.db.begin().await.unwrap();
        if db.label == "postgres" {
            other.execute_unprepared(&format!("SELECT id FROM workflow_instances WHERE id = '{held}' FOR UPDATE")).await.unwrap();
        }
        let sweep = {
            let e = e.clone();
            tokio::spawn(async move { e.sweep("w1").await.unwrap() })
        };
        if db.label == "postgres" {
            // The others are fired while the held instance waits.
            let started = std::time::Instant::now();
            while entities::event::Entity::find().filter(entities::event::Column::Event.eq("remind")).count(&e.db).await.unwrap() < 25 {
                assert!(started.elapsed() < std::time::Duration::from_secs(30), "the rest of the batch is held up");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            assert_eq!(events_of(&e, &held).await, ["start"]);
        }
        other.commit().await.unwrap();
        let report = sweep.await.unwrap();
        assert_eq!((report.fired, report.stale, report.failed), (20 + 2 * 5 + 1, 0, 0), "{}: {report:?}", db.label);
        for id in reminded.iter().chain([&held]) {
            assert_eq!(events_of(&e, id).await, ["start", "remind"], "{}", db.label);
            assert_eq!(outbox_topics(&e, id).await, ["email:applicant:deferral_reminder", "sms:applicant:deferral_reminder"]);
        }
        for id in &both {
            assert_eq!(events_of(&e, id).await, ["start", "remind", "expire"], "{}", db.label);
            assert_eq!(e.instance(id).await.unwrap().unwrap().state, "breach_noticed");
        }
        let pending = entities::timer::Entity::find().filter(entities::timer::Column::Status.eq("pending")).count(&e.db).await.unwrap();
        assert_eq!(pending, 21 + both.len() as u64, "only the 20 November expiries and the expired cases' response periods are left: {}", db.label);
        assert_eq!(e.sweep("w2").await.unwrap(), timers::SweepReport::default(), "nothing fired twice");
        let audit = pledgeflow::store::verify::verify_all(&e.db, &e.workflows.audit).await.unwrap();
        assert!(audit.breaks.is_empty(), "{}: {:?}", db.label, audit.breaks);
        db.cleanup().await;
    }
}

/// One batch may mix events that change an instance's version only (a reminder) with events
/// that move its state and deadlines (an expiry): every row is written whole then, the
/// reminder's context and deadlines as they were (a narrow write is only for a batch of the
/// first kind).
#[tokio::test]
async fn a_batch_of_reminders_and_expiries_keeps_every_instances_context() {
    for db in backends().await {
        let clock = ManualClock::at(local(2026, 11, 2, 10, 0));
        let e = engine(&db, &clock).await;
        let early = case_due(&e, local(2026, 11, 10, 17, 30)).await;
        let late = case_due(&e, local(2026, 11, 12, 17, 30)).await;
        clock.set(local(2026, 11, 9, 9, 30));
        assert_eq!(e.sweep("w").await.unwrap().fired, 1, "{}: the early case's reminder", db.label);
        // The early case's expiry (10th, 17:30) and the late one's reminder (11th, 09:00) together.
        clock.set(local(2026, 11, 11, 9, 30));
        assert_eq!(e.sweep("w").await.unwrap().fired, 2, "{}", db.label);
        for (id, state, events) in [(&early, "breach_noticed", vec!["start", "remind", "expire"]), (&late, "awaiting_materials", vec!["start", "remind"])] {
            let i = e.instance(id).await.unwrap().unwrap_or_else(|| panic!("{}: {id} unreadable", db.label));
            assert_eq!(i.state, state, "{}", db.label);
            assert_eq!(i.context["materials"][0]["code"], "M2", "{}: {id}", db.label);
            assert!(i.deadlines.contains_key("materials_due"), "{}: {id}", db.label);
            assert_eq!(events_of(&e, id).await, events, "{}", db.label);
        }
        let audit = pledgeflow::store::verify::verify_all(&e.db, &e.workflows.audit).await.unwrap();
        assert!(audit.breaks.is_empty(), "{}: {:?}", db.label, audit.breaks);
        db.cleanup().await;
    }
}
