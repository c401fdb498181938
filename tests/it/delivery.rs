//! The outbox delivered: reminders by email to a real SMTP server (both bodies and the .ics),
//! retries with backoff and dead letters, signed webhooks, and signals to parent instances.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use chrono::{DateTime, Duration, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use pledgeflow::{
    clock::ManualClock,
    config::{Config, WebhookEndpoint},
    delivery::{webhook, Channels, Outbox},
    runtime::Engine,
    store::outbox,
    workflow::Actor,
};
use serde_json::json;

use crate::helpers::{backends, engine, repo};
use crate::smtp::SmtpServer;

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().with_timezone(&Utc)
}

fn config(smtp: Option<&SmtpServer>, data_dir: &Path, max_attempts: u32) -> Config {
    Config {
        templates_dir: Some(repo().join("templates")),
        data_dir: data_dir.to_path_buf(),
        mail_url: smtp.map(SmtpServer::url),
        outbox_max_attempts: max_attempts,
        outbox_backoff: std::time::Duration::from_secs(60),
        mail_timeout: std::time::Duration::from_secs(10),
        contacts: BTreeMap::from([("department".into(), "window@example.gov.cn".into())]),
        ..Config::default()
    }
}

fn outbox_for(e: &Engine, config: &Config) -> Outbox {
    let channels = Channels::from_config(config, &e.workflows.set).unwrap();
    Outbox::new(e.clone(), Arc::new(channels), config)
}

/// A deferral case due Thursday 8 October 2026, 17:30: 1–7 October are holidays, so its
/// reminder fires on Wednesday 30 September at 09:00.
async fn case(e: &Engine, email: &str) -> String {
    let ctx = json!({
        "applicant": {"name": "上海示例餐饮管理有限公司", "uscc": "91310110666007217T", "email": email, "mobile": "13800000000"},
        "item": {"code": "310101-FOOD-01", "name": "食品经营许可"},
        "materials": [{"code": "M1", "name": "营业执照", "status": "provided"},
                      {"code": "M2", "name": "健康证明", "status": "deferred"}],
    });
    let deadlines = BTreeMap::from([("materials_due".to_string(), local(2026, 10, 8, 17, 30))]);
    e.start("material-deferral", ctx, deadlines, &Actor::person("w", "window")).await.unwrap().id
}

async fn rows(e: &Engine, id: &str) -> Vec<pledgeflow::store::entities::outbox::Model> {
    outbox::list(&e.db, None, Some(id), 0, 100).await.unwrap().0
}

#[tokio::test]
async fn a_reminder_reaches_a_real_smtp_server_once_with_text_html_and_ics() {
    let smtp = SmtpServer::start();
    for db in backends().await {
        let before = smtp.received().len();
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        let o = outbox_for(&e, &config(Some(&smtp), data.path(), 5));
        let id = case(&e, "boss@shifan-canyin.example.cn").await;

        clock.set(local(2026, 9, 30, 9, 0));
        assert_eq!(e.sweep("s").await.unwrap().fired, 1);
        let r = o.deliver_due("d1").await.unwrap();
        assert_eq!((r.delivered, r.failed, r.dead), (2, 0, 0), "the email and the SMS");
        for _ in 0..3 {
            assert_eq!(o.deliver_due("d2").await.unwrap().delivered, 0, "nothing is sent twice");
            assert_eq!(e.sweep("s").await.unwrap().fired, 0);
        }

        let received = smtp.received();
        assert_eq!(received.len(), before + 1);
        let mail = &received[before];
        assert_eq!(mail.to, ["boss@shifan-canyin.example.cn"]);
        assert_eq!(mail.from, "noreply@pledgeflow.localhost");
        let msg = MessageParser::default().parse(&mail.data).unwrap();
        // Sent on 09-30 before the National Day holiday for 10-08: that day, not "tomorrow".
        assert_eq!(msg.subject().unwrap(), "【办件提醒】食品经营许可容缺材料10月8日（星期四）到期");
        let text = msg.body_text(0).unwrap();
        assert!(text.contains("上海示例餐饮管理有限公司：") && text.contains("- 健康证明"), "{text}");
        assert!(text.contains("2026年10月8日（星期四）17:30") && text.contains(&id), "{text}");
        let html = msg.body_html(0).unwrap();
        assert!(html.contains("<li>健康证明</li>"), "{html}");
        let ics = msg.attachments().find(|a| a.attachment_name() == Some("deadline.ics")).expect("an .ics attachment");
        assert!(ics.content_type().unwrap().c_subtype.as_deref() == Some("calendar"));
        let ics = String::from_utf8_lossy(ics.contents());
        assert!(ics.contains("METHOD:PUBLISH") && ics.contains("DTSTART:20261008T093000Z"), "{ics}");
        let row = rows(&e, &id).await.into_iter().find(|r| r.channel == "email").unwrap();
        let message_id = msg.message_id().unwrap();
        assert_eq!(message_id, format!("{}@pledgeflow.localhost", row.idempotency_key.replace(':', ".")));
        assert!(ics.contains(&format!("UID:<{message_id}>")), "{ics}");
        assert_eq!(row.status, "delivered");
        assert_eq!(outbox::attempts(&e.db, &row.id).await.unwrap().len(), 1);

        let sms = rows(&e, &id).await.into_iter().find(|r| r.channel == "sms").unwrap();
        let file = data.path().join("webhooks/sms").join(format!("{}.json", sms.idempotency_key.replace(':', "_")));
        let body: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(body["to"], "13800000000");
        assert!(body["text"].as_str().unwrap().contains("2026年10月8日（星期四）17:30"));
        db.cleanup().await;
    }
}

#[tokio::test]
async fn refused_mail_is_retried_with_backoff_then_dead_lettered_and_requeued() {
    let smtp = SmtpServer::start();
    for db in backends().await {
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        let o = outbox_for(&e, &config(Some(&smtp), data.path(), 3));
        let first = case(&e, "first@example.cn").await;
        clock.set(local(2026, 9, 30, 9, 0));
        e.sweep("s").await.unwrap();

        // Refused twice (451), accepted the third time: delivered once, three attempts kept.
        let base = smtp.received().len();
        smtp.refuse_next(2, false);
        assert_eq!(o.deliver_due("d").await.unwrap().failed, 1);
        assert_eq!(o.deliver_due("d").await.unwrap().failed, 0, "not due again before the backoff");
        clock.advance(Duration::seconds(60));
        assert_eq!(o.deliver_due("d").await.unwrap().failed, 1);
        clock.advance(Duration::seconds(119));
        assert_eq!(o.deliver_due("d").await.unwrap().delivered, 0, "the second wait is doubled");
        clock.advance(Duration::seconds(1));
        assert_eq!(o.deliver_due("d").await.unwrap().delivered, 1);
        assert_eq!(smtp.received().len(), base + 1);
        assert!(smtp.refused() >= 2);
        let row = rows(&e, &first).await.into_iter().find(|r| r.channel == "email").unwrap();
        let outcomes: Vec<String> = outbox::attempts(&e.db, &row.id).await.unwrap().into_iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, ["failed", "failed", "delivered"]);
        assert_eq!((row.status.as_str(), row.attempts), ("delivered", 3));

        // Refused every time: dead after the third attempt, visible, and requeued by an admin.
        let second = case(&e, "second@example.cn").await;
        clock.set(local(2026, 9, 30, 9, 0));
        e.sweep("s").await.unwrap();
        smtp.refuse_next(100, false);
        for _ in 0..3 {
            o.deliver_due("d").await.unwrap();
            clock.advance(Duration::hours(1));
        }
        let (dead, total) = outbox::list(&e.db, Some(outbox::status::DEAD), None, 0, 10).await.unwrap();
        assert_eq!(total, 1);
        assert_eq!(dead[0].instance_id, second);
        assert!(dead[0].last_error.as_deref().unwrap().contains("451"), "{:?}", dead[0].last_error);
        assert_eq!(o.deliver_due("d").await.unwrap().delivered, 0, "a dead letter is left alone");
        smtp.refuse_next(0, false);
        assert!(outbox::requeue(&e.db, &dead[0].id, "admin-1", e.now()).await.unwrap());
        assert!(!outbox::requeue(&e.db, &dead[0].id, "admin-1", e.now()).await.unwrap(), "only a dead row is requeued");
        assert_eq!(o.deliver_due("d").await.unwrap().delivered, 1);
        let outcomes: Vec<String> = outbox::attempts(&e.db, &dead[0].id).await.unwrap().into_iter().map(|a| a.outcome).collect();
        assert_eq!(outcomes, ["failed", "failed", "dead", "requeued", "delivered"]);

        // A permanent refusal (550) is dead at once: retrying cannot help.
        let third = case(&e, "nobody@example.cn").await;
        clock.set(local(2026, 9, 30, 9, 0));
        e.sweep("s").await.unwrap();
        smtp.refuse_next(1, true);
        assert_eq!(o.deliver_due("d").await.unwrap().dead, 1);
        let row = rows(&e, &third).await.into_iter().find(|r| r.channel == "email").unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("dead", 1));
        db.cleanup().await;
    }
}

/// Receives webhooks and keeps each request's headers and body; answers 500 while told to.
async fn webhook_receiver(fail_first: usize) -> (String, Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>) {
    use axum::{extract::State, http::StatusCode, routing::post, Router};
    type Seen = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String)>>>;
    let seen: Seen = Arc::default();
    let router = Router::new()
        .route(
            "/hook",
            post(move |State(seen): State<Seen>, headers: axum::http::HeaderMap, body: String| async move {
                let mut s = seen.lock().unwrap();
                s.push((headers, body));
                if s.len() <= fail_first { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
            }),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_signals_reach_the_parent_once() {
    for db in backends().await {
        let data = tempfile::tempdir().unwrap();
        let (url, seen) = webhook_receiver(1).await;
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        let mut cfg = config(None, data.path(), 5);
        cfg.webhooks.insert("credit".into(), WebhookEndpoint { url, secret: "s3cret".into() });
        let o = outbox_for(&e, &cfg);
        let id = case(&e, "a@example.cn").await;

        // Overdue, and silent through the notice's period: revoked; the credit platform is told
        // of the breach (refused once, then taken).
        clock.set(local(2026, 10, 8, 17, 30));
        e.sweep("s").await.unwrap();
        clock.set(e.instance(&id).await.unwrap().unwrap().deadlines["response_due"]);
        e.sweep("s").await.unwrap();
        o.deliver_due("d").await.unwrap();
        clock.advance(Duration::seconds(60));
        o.deliver_due("d").await.unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one refused, one accepted");
        let (headers, body) = &seen[1];
        // Standard Webhooks, checked by the specification's own library: the configured raw
        // secret is the whsec_ secret of its bytes.
        use base64::Engine as _;
        let whsec = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode("s3cret"));
        let verifier = standardwebhooks::Webhook::new(&whsec).unwrap();
        verifier.verify(body.as_bytes(), headers).expect("a delivery verifies");
        assert!(verifier.verify(body.replace("breach", "kept").as_bytes(), headers).is_err(), "a changed body does not");
        let stranger = standardwebhooks::Webhook::new(&format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode("other"))).unwrap();
        assert!(stranger.verify(body.as_bytes(), headers).is_err(), "another secret does not");
        assert_eq!(headers[webhook::ID_HEADER], seen[0].0[webhook::ID_HEADER], "a retry is the same message to the receiver");
        assert!(verifier.verify(seen[0].1.as_bytes(), &seen[0].0).is_ok(), "the refused attempt was signed too");
        // The first releases' headers, still sent (deprecated).
        let ts: i64 = headers[webhook::TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
        assert_eq!(headers[webhook::SIGNATURE_HEADER].to_str().unwrap(), webhook::signature(b"s3cret", ts, body.as_bytes()));
        assert_eq!(headers["idempotency-key"], seen[0].0["idempotency-key"], "a retry carries the same key");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!((body["topic"].as_str(), body["case_id"].as_str()), (Some("breach"), Some(id.as_str())));
        assert!(body.get("context").is_none() && body.get("case").is_none(), "the credit platform gets the notice, not the case: {body}");
        // With no mail server configured, mail goes to .eml files: the notice and the
        // revocation, each to the applicant and the department. The reminder fell due in the
        // same sweep, after its deadline: it is not sent, and says why.
        let emls = std::fs::read_dir(data.path().join("mail")).unwrap().count();
        assert_eq!(emls, 4);
        let reminders: Vec<_> = rows(&e, &id).await.into_iter().filter(|r| r.topic == "deferral_reminder").collect();
        assert_eq!(reminders.len(), 2, "email and SMS");
        for r in &reminders {
            assert_eq!(r.status, "skipped");
            let history = outbox::attempts(&e.db, &r.id).await.unwrap();
            assert!(history[0].detail.as_deref().unwrap().contains("passed"), "{history:?}");
        }

        // A supervision task closing signals its case, which closes exactly once.
        let case_id = case(&e, "b@example.cn").await;
        let w = Actor::person("w", "window");
        e.fire(&case_id, "materials_complete", &w, &json!({"received": ["M2"]}), None).await.unwrap();
        let r = e.fire(&case_id, "approve", &Actor::person("a", "approver"), &json!({"licence_number": "JY1"}), None).await.unwrap();
        let task = r.spawned[0].clone();
        e.fire(&task, "accept", &Actor::person("d", "division_admin"), &json!({"inspectors": ["i"]}), None).await.unwrap();
        e.fire(&task, "inspection_finished", &Actor::person("i", "inspector"), &json!({"findings": "ok"}), None).await.unwrap();
        e.fire(&task, "kept", &Actor::person("i", "inspector"), &json!({}), None).await.unwrap();
        assert_eq!(e.instance(&case_id).await.unwrap().unwrap().state, "licensed");
        o.deliver_due("d").await.unwrap();
        o.deliver_due("d").await.unwrap();
        let parent = e.instance(&case_id).await.unwrap().unwrap();
        assert_eq!(parent.state, "closed");
        let closes = e.history(&case_id).await.unwrap().iter().filter(|h| h.event == "supervision_closed").count();
        assert_eq!(closes, 1);
        db.cleanup().await;
    }
}

#[tokio::test]
async fn two_workers_racing_over_the_outbox_send_each_message_once() {
    let smtp = SmtpServer::start();
    for db in backends().await {
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        let o = outbox_for(&e, &config(Some(&smtp), data.path(), 5));
        let before = smtp.received().len();
        for n in 0..20 {
            case(&e, &format!("racer{n}@example.cn")).await;
        }
        clock.set(local(2026, 9, 30, 9, 0));
        assert_eq!(e.sweep("s").await.unwrap().fired, 20);
        let (a, b) = tokio::join!(o.deliver_due("worker-a"), o.deliver_due("worker-b"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.delivered + b.delivered, 40, "20 emails and 20 SMS: {a:?} {b:?}");
        let mut to: Vec<String> = smtp.received()[before..].iter().flat_map(|m| m.to.clone()).collect();
        to.sort();
        to.dedup();
        assert_eq!(smtp.received().len() - before, 20);
        assert_eq!(to.len(), 20, "each applicant got exactly one");
        db.cleanup().await;
    }
}

#[tokio::test]
async fn the_morning_digest_runs_once_per_day_however_many_processes_try() {
    for db in backends().await {
        let data = tempfile::tempdir().unwrap();
        let clock = ManualClock::at(local(2026, 9, 28, 10, 0));
        let e = engine(&db, &clock).await;
        let mut cfg = config(None, data.path(), 5);
        cfg.contacts.insert("digest".into(), "leader@example.gov.cn".into());
        let o = outbox_for(&e, &cfg);
        case(&e, "a@example.cn").await;
        let jobs = pledgeflow::jobs::Jobs::new(o, 30);
        // 29 September 08:30: the reminder (30 September 09:00) falls before the end of the
        // next working day; the deadline (8 October) does not.
        clock.set(local(2026, 9, 29, 8, 30));
        let at = e.now();
        let first = jobs.run(pledgeflow::jobs::Job::Digest, at, "p1").await.unwrap();
        let second = jobs.run(pledgeflow::jobs::Job::Digest, at, "p2").await.unwrap();
        assert!(first.unwrap().starts_with("1 deadline(s) listed"));
        assert_eq!(second, None, "the other process skips the same occurrence");
        let emls: Vec<_> = std::fs::read_dir(data.path().join("mail")).unwrap().map(|f| f.unwrap().path()).collect();
        assert_eq!(emls.len(), 1);
        let msg = std::fs::read(&emls[0]).unwrap();
        let msg = MessageParser::default().parse(&msg).unwrap();
        assert!(msg.body_text(0).unwrap().contains("2026年9月30日（星期三）09:00"), "{:?}", msg.body_text(0));

        // Not on a holiday (1 October), but on a 调休 Saturday (10 October).
        clock.set(local(2026, 10, 1, 8, 30));
        let holiday = jobs.run(pledgeflow::jobs::Job::Digest, e.now(), "p1").await.unwrap().unwrap();
        assert!(holiday.contains("not a working day"), "{holiday}");
        clock.set(local(2026, 10, 10, 8, 30));
        let makeup = jobs.run(pledgeflow::jobs::Job::Digest, e.now(), "p1").await.unwrap().unwrap();
        assert!(makeup.contains("listed"), "{makeup}");

        let housekeeping = jobs.run(pledgeflow::jobs::Job::Housekeeping, at, "p1").await.unwrap().unwrap();
        assert!(housekeeping.starts_with("purged 0"), "{housekeeping}");
        db.cleanup().await;
    }
}

/// A reminder names the day its deadline falls on as seen when it is sent (issue #18, finding
/// 6): 明天 only when it is tomorrow — sent on Saturday 2026-02-14 for Tuesday 02-24 (after the
/// Spring Festival holiday), it says that Tuesday; the staff's look-at reminder likewise.
#[test]
fn a_reminder_says_the_real_day_of_its_deadline() {
    use pledgeflow::delivery::{message, templates::Templates};
    let templates = Templates::load(&pledgeflow::domain::shipped::Source::Folder(crate::helpers::repo().join("templates"))).unwrap();
    let tz = chrono_tz::Asia::Shanghai;
    let local = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc);
    let due = local("2026-02-24T17:30:00+08:00");
    let payload = json!({"instance_id": "c1", "definition": "material-deferral", "to": "awaiting_materials",
        "context": {"applicant": {"name": "甲公司"}, "item": {"name": "食品经营许可", "code": "310101-FOOD-01"}},
        "deadlines": {"materials_due": due.to_rfc3339()}});
    let subject = |topic: &str, now: &str| {
        let ctx = message::context(&payload, "applicant", &Default::default(), tz, message::Titles { workflow: "w", state: "s" }, Some(due), local(now));
        templates.render_email(topic, &minijinja::Value::from_serialize(&ctx)).unwrap().subject
    };
    assert_eq!(subject("deferral_reminder", "2026-02-14T10:00:00+08:00"), "【办件提醒】食品经营许可容缺材料2月24日（星期二）到期");
    assert_eq!(subject("deferral_reminder", "2026-02-23T10:00:00+08:00"), "【办件提醒】食品经营许可容缺材料明天到期");
    assert_eq!(subject("deferral_reminder", "2026-02-24T08:00:00+08:00"), "【办件提醒】食品经营许可容缺材料今天到期");
    assert_eq!(subject("look_at_reminder", "2026-02-14T10:00:00+08:00"), "【核查提醒】食品经营许可监管任务2月24日（星期二）到期");
}
