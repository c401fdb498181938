//! Delivering the outbox after commit: email (lettre), SMS and other webhooks (signed JSON),
//! and signals to parent instances. A worker claims due rows under a lease, delivers each,
//! and records the attempt; failures back off exponentially until the row is dead-lettered.

pub mod email;
pub mod message;
pub mod notices;
pub mod templates;
pub mod webhook;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use serde_json::{json, Value};

use crate::config::{Config, Office};
use crate::runtime::Engine;
use crate::store::{self, entities, instances, outbox, StoreError};
use crate::workflow::{Actor, TransitionError};
use templates::Templates;

/// Why a delivery failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
    /// Not worth sending any more: a reminder whose deadline has passed (after downtime, the
    /// reminder and the expiry can fall due in one sweep).
    #[error("{0}")]
    Moot(String),
}

/// Everything that turns an outbox row into a message on its way.
pub struct Channels {
    pub templates: Templates,
    pub mailer: email::Mailer,
    pub webhooks: webhook::Webhooks,
    pub contacts: BTreeMap<String, String>,
    pub office: Office,
}

impl Channels {
    /// Loads the templates (refusing any the definitions in `set` need but lack) and sets up
    /// the transports; inside the Tokio runtime.
    pub fn from_config(config: &Config, set: &crate::workflow::WorkflowSet) -> anyhow::Result<Self> {
        let source = config.templates();
        let problems = match Templates::load(&source) {
            Ok(t) => match t.missing_for(set) {
                missing if missing.is_empty() => Ok(t),
                missing => Err(missing),
            },
            Err(p) => Err(p),
        };
        let templates = problems
            .map_err(|p| anyhow::anyhow!("message templates in {} have {} problem(s):\n{}", source.describe(), p.len(), p.join("\n")))?;
        let mailer = email::Mailer::new(
            config.mail_url.as_deref(),
            config.data_dir.join("mail"),
            config.mail_from.clone(),
            config.mail_timeout,
        )?;
        let webhooks = webhook::Webhooks::new(config.webhooks.clone(), config.data_dir.join("webhooks"), config.mail_timeout)?;
        Ok(Self { templates, mailer, webhooks, contacts: config.contacts.clone(), office: config.office.clone() })
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    /// Failed, to be tried again later.
    pub failed: usize,
    pub dead: usize,
    pub skipped: usize,
    /// Claim lost to another worker meanwhile (a lease ran out): nothing recorded.
    pub lost: usize,
}

#[derive(Clone)]
pub struct Outbox {
    pub engine: Engine,
    pub channels: Arc<Channels>,
    pub max_attempts: u32,
    pub backoff: Duration,
}

impl Outbox {
    pub fn new(engine: Engine, channels: Arc<Channels>, config: &Config) -> Self {
        Self { engine, channels, max_attempts: config.outbox_max_attempts, backoff: config.outbox_backoff }
    }

    /// Delivers every row due now, a batch at a time.
    pub async fn deliver_due(&self, worker: &str) -> Result<DeliveryReport, StoreError> {
        let mut report = DeliveryReport::default();
        let now = self.engine.now();
        loop {
            let claimed = outbox::claim_due(&self.engine.db, worker, now, chrono::Duration::minutes(5), 50).await?;
            if claimed.is_empty() {
                return Ok(report);
            }
            for (i, d) in claimed.iter().enumerate() {
                if let Err(e) = self.deliver(d, worker, now, &mut report).await {
                    // The database failed: what is left of the batch is free again at once,
                    // instead of waiting out its five-minute lease once the database is back.
                    let left: Vec<&str> = claimed[i..].iter().map(|d| d.id.as_str()).collect();
                    store::release_rows(&self.engine.db, "outbox", &left, worker).await;
                    return Err(e);
                }
            }
        }
    }

    async fn deliver(&self, d: &outbox::Delivery, worker: &str, now: DateTime<Utc>, report: &mut DeliveryReport) -> Result<(), StoreError> {
        let outcome = if d.channel == "signal" {
            match self.signal(d, worker, now).await? {
                Some(outcome) => outcome,
                None => {
                    report.delivered += 1;
                    return Ok(());
                }
            }
        } else {
            // A message that makes its building or sending panic is dead with the reason; it
            // must not take the worker, and every message after it, down with it.
            use futures::FutureExt;
            let sent = match std::panic::AssertUnwindSafe(self.send(d, now)).catch_unwind().await {
                Ok(sent) => sent,
                Err(panic) => {
                    metrics::counter!(crate::telemetry::DELIVERY_PANICS, "channel" => d.channel.clone()).increment(1);
                    Err(ChannelError::Permanent(format!("delivering it panicked: {}", crate::health::panic_text(&*panic))))
                }
            };
            self.outcome(d, now, sent)
        };
        let settled = outbox::settle(&self.engine.db, d, worker, now, &outcome, self.max_attempts).await?;
        self.count(report, d, &outcome, settled);
        Ok(())
    }

    fn outcome(&self, d: &outbox::Delivery, now: DateTime<Utc>, sent: Result<String, ChannelError>) -> outbox::Outcome {
        match sent {
            Ok(detail) => outbox::Outcome::Delivered { detail },
            Err(ChannelError::Transient(error)) => {
                outbox::Outcome::Failed { error, next_at: now + outbox::backoff(self.backoff, d.attempts + 1) }
            }
            Err(ChannelError::Permanent(error)) => outbox::Outcome::Dead { error },
            Err(ChannelError::Moot(reason)) => outbox::Outcome::Skipped { reason },
        }
    }

    fn count(&self, report: &mut DeliveryReport, d: &outbox::Delivery, outcome: &outbox::Outcome, settled: bool) {
        let (key, channel, topic) = (&d.idempotency_key, &d.channel, &d.topic);
        let counted = match outcome {
            _ if !settled => "lost",
            outbox::Outcome::Delivered { .. } => "delivered",
            outbox::Outcome::Skipped { .. } => "skipped",
            outbox::Outcome::Failed { .. } => "failed",
            outbox::Outcome::Dead { .. } => "dead",
        };
        metrics::counter!(crate::telemetry::OUTBOX_MESSAGES, "channel" => channel.clone(), "outcome" => counted).increment(1);
        if counted == "delivered" && channel == "email" {
            metrics::counter!(crate::telemetry::EMAILS_SENT).increment(1);
        }
        match outcome {
            _ if !settled => report.lost += 1,
            outbox::Outcome::Delivered { detail } => {
                report.delivered += 1;
                tracing::info!(%key, %channel, %topic, %detail, "delivered");
            }
            outbox::Outcome::Skipped { reason } => {
                report.skipped += 1;
                tracing::info!(%key, %channel, %topic, %reason, "not sent");
            }
            outbox::Outcome::Failed { error, .. } if d.attempts + 1 < i64::from(self.max_attempts) => {
                report.failed += 1;
                tracing::warn!(%key, %channel, %topic, attempt = d.attempts + 1, %error, "delivery failed; will retry");
            }
            outbox::Outcome::Failed { error, .. } | outbox::Outcome::Dead { error } => {
                report.dead += 1;
                tracing::error!(%key, %channel, %topic, attempt = d.attempts + 1, %error, "delivery dead-lettered");
            }
        }
    }

    /// Fires the event on the parent in the same transaction that settles the row, so the
    /// parent sees it exactly once. `None` when delivered; otherwise the failure to record.
    async fn signal(&self, d: &outbox::Delivery, worker: &str, now: DateTime<Utc>) -> Result<Option<outbox::Outcome>, StoreError> {
        let payload = json!({ "from_instance": d.instance_id, "from_seq": d.event_seq });
        let txn = store::begin_write(&self.engine.db).await?;
        let fired = instances::fire(&txn, &self.engine.workflows, &d.recipient, &d.topic, &Actor::system(), &payload, None, now).await;
        let error = match fired {
            Ok(_) => {
                let outcome = outbox::Outcome::Delivered { detail: format!("fired {} on {}", d.topic, d.recipient) };
                if outbox::settle(&txn, d, worker, now, &outcome, self.max_attempts).await? {
                    txn.commit().await?;
                } else {
                    txn.rollback().await?;
                }
                return Ok(None);
            }
            Err(e) => e,
        };
        txn.rollback().await?;
        Ok(Some(match error {
            StoreError::Conflict { .. } => self.outcome(d, now, Err(ChannelError::Transient(error.to_string()))),
            StoreError::Db(e) => return Err(StoreError::Db(e)),
            // The recipient has moved on (a task already closed when its case ends, a case
            // already revoked when its task closes): the signal no longer means anything.
            StoreError::Transition(e @ TransitionError::NotAllowedInState { .. }) => outbox::Outcome::Skipped { reason: e.to_string() },
            other => outbox::Outcome::Dead { error: other.to_string() },
        }))
    }

    async fn send(&self, d: &outbox::Delivery, now: DateTime<Utc>) -> Result<String, ChannelError> {
        if crate::health::fault("deliver", &d.topic) {
            panic!("fault injected: delivering {}", d.topic);
        }
        let mut payload: Value = serde_json::from_str(&d.payload).map_err(|e| ChannelError::Permanent(format!("payload: {e}")))?;
        self.name_the_licence(&mut payload).await?;
        let c = &self.channels;
        // A signature's timestamp is the receiver's freshness check: the wall clock's, even on a
        // training server whose own time is moved.
        let stamp = chrono::Utc::now().timestamp();
        match d.channel.as_str() {
            "email" => {
                let marked = self.reminder_instant(d, &payload, now).await?;
                let ctx = self.template_context(d, &payload, marked, now);
                let (channels, topic) = (c.clone(), d.topic.clone());
                let body = crate::templating::off_thread(move || channels.templates.render_email(&topic, &ctx)).await.map_err(ChannelError::Permanent)?;
                let message_id = email::message_id(&d.idempotency_key, &c.mailer.from);
                let calendar = match (marked, &body.calendar_summary) {
                    (Some(t), Some(summary)) => Some(email::ics(&message_id, summary, &body.text, t, now)),
                    _ => None,
                };
                let to = self.addresses(&d.recipient, &payload["context"])?;
                let kept = (d.recipient == "applicant").then(|| (body.subject.clone(), body.text.clone()));
                let message = email::build(&c.mailer.from, email::Envelope { to, message_id, calendar }, body)?;
                let sent = c.mailer.send(message).await?;
                // What the enterprise received stays with its case, worded as sent.
                if let Some((subject, text)) = kept {
                    store::notices::keep(&self.engine.db, d, &subject, &text, now).await.map_err(|e| ChannelError::Transient(e.to_string()))?;
                }
                Ok(sent)
            }
            "sms" => {
                let mobile = message::inherited(&payload["context"], &d.recipient)["mobile"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ChannelError::Permanent(format!("no mobile number for {}", d.recipient)))?;
                let marked = self.reminder_instant(d, &payload, now).await?;
                let ctx = self.template_context(d, &payload, marked, now);
                let (channels, topic) = (c.clone(), d.topic.clone());
                let text = crate::templating::off_thread(move || channels.templates.render_sms(&topic, &ctx)).await.map_err(ChannelError::Permanent)?;
                let body = json!({ "to": mobile, "text": text, "topic": d.topic, "case_id": d.instance_id, "key": d.idempotency_key });
                c.webhooks.post("sms", &d.idempotency_key, &body, stamp).await
            }
            "webhook" => {
                let body = notices::body(&d.recipient, &d.topic, &d.idempotency_key, &payload, instances::from_ms(d.created_at));
                c.webhooks.post(&d.recipient, &d.idempotency_key, &body, stamp).await
            }
            other => Err(ChannelError::Permanent(format!("unknown channel {other:?}"))),
        }
    }

    /// Puts the case's licence number into a message's context: the approval's event does not
    /// carry it (it is taken last, after the transition's rows are written: `window::intake`),
    /// so the context the approval's messages and its supervision task were written with lacks
    /// it — the case's own, or for a supervision task its case's — and every channel, template
    /// and webhook body reads it from the context.
    async fn name_the_licence(&self, payload: &mut Value) -> Result<(), ChannelError> {
        let ctx = &payload["context"];
        // Only the approval's own messages and its supervision task's carry the mark
        // (`number_taken_last`); other contexts hold the number, or no licence yet.
        if !message::inherited(ctx, "licence_number").is_object() {
            return Ok(());
        }
        let ids: Vec<String> = [&payload["instance_id"], &ctx["parent"]["id"]].into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
        if ids.is_empty() {
            return Ok(());
        }
        #[derive(sea_orm::FromQueryResult)]
        struct Numbered {
            instance_id: String,
            number: String,
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let found: Vec<Numbered> = store::fetch(&self.engine.db, &format!("SELECT instance_id, number FROM licences WHERE instance_id IN ({marks})"), ids.iter().map(|i| i.as_str().into()).collect())
            .await
            .map_err(|e| ChannelError::Transient(e.to_string()))?;
        // The instance's own licence before its case's.
        let number = ids.iter().find_map(|id| found.iter().find(|f| &f.instance_id == id)).map(|f| f.number.clone());
        if let (Some(number), Some(ctx)) = (number, payload["context"].as_object_mut()) {
            ctx.insert("licence_number".into(), Value::String(number));
        }
        Ok(())
    }

    fn template_context(&self, d: &outbox::Delivery, payload: &Value, marked: Option<DateTime<Utc>>, now: DateTime<Utc>) -> minijinja::Value {
        let set = &self.engine.workflows.set;
        let version = payload["definition_version"].as_i64().unwrap_or(0);
        let def = set.get(payload["definition"].as_str().unwrap_or_default(), version);
        let workflow = def.as_ref().and_then(|d| d.title.clone()).unwrap_or_default();
        let state = def
            .as_ref()
            .and_then(|def| def.states.get(payload["to"].as_str().unwrap_or_default()))
            .and_then(|s| s.title.clone())
            .unwrap_or_default();
        let titles = message::Titles { workflow: &workflow, state: &state };
        let tz = self.engine.workflows.env.tz;
        minijinja::Value::from_serialize(message::context(payload, &d.recipient, &self.channels.office, tz, titles, marked, now))
    }

    /// For a reminder (a topic whose email template has a calendar entry), the instant it
    /// warns of; `Moot` once that has passed.
    async fn reminder_instant(&self, d: &outbox::Delivery, payload: &Value, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, ChannelError> {
        let (at, skip_when_past) = match self.channels.templates.calendar_at(&d.topic) {
            Ok(Some(m)) => (m.at.clone(), m.skip_when_past),
            Ok(None) | Err(_) => return Ok(None),
        };
        let marked = self.marked_instant(d, payload, &at).await?;
        if skip_when_past && marked <= now {
            return Err(ChannelError::Moot(format!("the reminder's deadline ({at}) passed at {marked} before it could be sent")));
        }
        Ok(Some(marked))
    }

    /// The instant a reminder's calendar entry marks: one of the instance's deadlines, or the
    /// due time of one of its pending timers (the expiry the reminder warns of).
    async fn marked_instant(&self, d: &outbox::Delivery, payload: &Value, at: &str) -> Result<DateTime<Utc>, ChannelError> {
        if let Some(name) = at.strip_prefix("deadline:") {
            return payload["deadlines"][name]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| ChannelError::Permanent(format!("the case has no deadline {name}")));
        }
        let name = at.strip_prefix("timer:").unwrap_or(at);
        let timers = instances::timers(&self.engine.db, &d.instance_id)
            .await
            .map_err(|e| ChannelError::Transient(e.to_string()))?;
        // The latest arming of that timer, whatever became of it since: an order sent after the
        // case moved on still names the deadline it set.
        timers
            .iter()
            .filter(|t: &&entities::timer::Model| t.name == name)
            .max_by_key(|t| t.armed_seq)
            .map(|t| instances::from_ms(t.due_at))
            .ok_or_else(|| ChannelError::Permanent(format!("the case has no timer {name}")))
    }

    /// The applicant's address from the case, or staff addresses from the configuration.
    fn addresses(&self, recipient: &str, context: &Value) -> Result<Vec<Mailbox>, ChannelError> {
        let parse = |name: Option<&str>, addr: &str| -> Result<Mailbox, ChannelError> {
            let email = addr.trim().parse().map_err(|e| ChannelError::Permanent(format!("bad address {addr:?} for {recipient}: {e}")))?;
            // A name stored before names were checked may hold line breaks or other control
            // characters: shown with spaces instead, never passed on into a header.
            let name = name.map(|n| n.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>()).filter(|n| !n.trim().is_empty());
            Ok(Mailbox::new(name, email))
        };
        let person = message::inherited(context, recipient);
        if let Some(addr) = person["email"].as_str() {
            return Ok(vec![parse(person["name"].as_str(), addr)?]);
        }
        match self.channels.contacts.get(recipient) {
            Some(list) => list.split(',').filter(|a| !a.trim().is_empty()).map(|a| parse(None, a)).collect(),
            None => Err(ChannelError::Permanent(format!(
                "no email address for {recipient}: the case has none and contacts.{recipient} is not configured"
            ))),
        }
    }
}
