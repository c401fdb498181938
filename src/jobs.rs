//! Daily jobs: the morning digest of deadlines coming up, and nightly housekeeping. Each
//! occurrence runs once however many processes serve: the first to record it in `job_runs`
//! runs it, the others see the row and skip.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use lettre::message::Mailbox;
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use serde_json::json;

use crate::delivery::{email, message, ChannelError, Outbox};
use crate::store::{self, outbox, stmt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    Digest,
    Housekeeping,
    /// The random inspection draw (双随机).
    Draw,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Digest => "digest",
            Job::Housekeeping => "housekeeping",
            Job::Draw => "draw",
        }
    }
}

#[derive(Clone)]
pub struct Jobs {
    outbox: Outbox,
    retention_days: u32,
    sampling: crate::supervision::draw::Sampling,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("{0}")]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// One deadline in the digest.
#[derive(Debug, Clone, FromQueryResult, serde::Serialize)]
pub struct Upcoming {
    pub instance_id: String,
    pub definition_name: String,
    pub name: String,
    pub event: String,
    pub due_at: i64,
    pub context: String,
}

impl Jobs {
    pub fn new(outbox: Outbox, retention_days: u32) -> Self {
        Self { outbox, retention_days, sampling: Default::default() }
    }

    pub fn with_sampling(mut self, sampling: crate::supervision::draw::Sampling) -> Self {
        self.sampling = sampling;
        self
    }

    /// Runs `job` for the occurrence at `at` unless some process already has. `None` when
    /// skipped; otherwise what it did.
    pub async fn run(&self, job: Job, at: DateTime<Utc>, worker: &str) -> Result<Option<String>, JobError> {
        let db = &self.outbox.engine.db;
        let now = self.outbox.engine.now();
        let claimed = db
            .execute_raw(stmt(
                db,
                "INSERT INTO job_runs (job, occurrence, worker, started_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                vec![job.name().into(), at.timestamp_millis().into(), worker.into(), now.timestamp_millis().into()],
            ))
            .await?;
        if claimed.rows_affected() == 0 {
            return Ok(None);
        }
        let summary = match job {
            Job::Digest => self.digest(now).await,
            Job::Housekeeping => self.housekeeping(now).await,
            Job::Draw => {
                let seed: u64 = rand::random();
                crate::supervision::draws::run_every_region(&self.outbox.engine, &self.sampling, seed, "cron")
                    .await
                    .map(|all| all.iter().map(|r| format!("draw {} (seed {}): {} of {} cases", r.id, r.seed, r.picks.len(), r.pool)).collect::<Vec<_>>().join("; "))
                    .map_err(JobError::from)
            }
        };
        let recorded = match &summary {
            Ok(s) => s.clone(),
            Err(e) => format!("failed: {e}"),
        };
        db.execute_raw(stmt(
            db,
            "UPDATE job_runs SET finished_at = ?, summary = ? WHERE job = ? AND occurrence = ?",
            vec![self.outbox.engine.now().timestamp_millis().into(), recorded.into(), job.name().into(), at.timestamp_millis().into()],
        ))
        .await?;
        summary.map(Some)
    }

    pub async fn run_logged(&self, job: Job, at: DateTime<Utc>, worker: &str) {
        match self.run(job, at, worker).await {
            Ok(Some(summary)) => tracing::info!(job = job.name(), %summary, "daily job"),
            Ok(None) => tracing::debug!(job = job.name(), "daily job already run by another process"),
            Err(e) => tracing::error!(job = job.name(), error = %e, "daily job failed"),
        }
    }

    /// Deadlines (pending timers) falling before the end of the next working day.
    pub async fn upcoming(&self, now: DateTime<Utc>) -> Result<Vec<Upcoming>, DbErr> {
        let env = &self.outbox.engine.workflows.env;
        let today = now.with_timezone(&env.tz).date_naive();
        let horizon_day = env.calendar.get().add_working_days(today, 1).unwrap_or(today + Duration::days(1));
        let horizon = crate::domain::calendar::local_instant(horizon_day.succ_opt().unwrap_or(horizon_day), NaiveTime::MIN, env.tz).unwrap_or(now);
        let db = &self.outbox.engine.db;
        let rows = db
            .query_all_raw(stmt(
                db,
                "SELECT t.instance_id, i.definition_name, t.name, t.event, t.due_at, i.context \
                 FROM workflow_timers t JOIN workflow_instances i ON i.id = t.instance_id \
                 WHERE t.status = 'pending' AND t.due_at <= ? ORDER BY t.due_at LIMIT 1000",
                vec![horizon.timestamp_millis().into()],
            ))
            .await?;
        rows.iter().map(|r| Upcoming::from_query_result(r, "")).collect()
    }

    async fn digest(&self, now: DateTime<Utc>) -> Result<String, JobError> {
        crate::app::warn_of_missing_year(&self.outbox.engine.workflows.env.calendar, now, self.outbox.engine.workflows.env.tz);
        let channels = &self.outbox.channels;
        let Some(list) = channels.contacts.get("digest").or_else(|| channels.contacts.get("department")) else {
            tracing::warn!("no contacts.digest (or contacts.department) configured: the morning digest goes nowhere");
            return Ok("skipped: no contacts.digest configured".into());
        };
        let tz = self.outbox.engine.workflows.env.tz;
        // Cron cannot say "working days" (holidays, 调休 Saturdays): the calendar decides.
        let today = now.with_timezone(&tz).date_naive();
        if !self.outbox.engine.workflows.env.calendar.get().is_working_day(today).unwrap_or(true) {
            return Ok(format!("skipped: {today} is not a working day"));
        }
        let upcoming = self.upcoming(now).await?;
        let set = &self.outbox.engine.workflows.set;
        let items: Vec<_> = upcoming
            .iter()
            .map(|u| {
                let ctx: serde_json::Value = serde_json::from_str(&u.context).unwrap_or_default();
                json!({
                    "case_id": u.instance_id,
                    "workflow": set.latest(&u.definition_name).and_then(|d| d.title.clone()).unwrap_or(u.definition_name.clone()),
                    "timer": u.name, "event": u.event,
                    "due": message::local_text(store::millis::from_ms(u.due_at), tz),
                    "applicant": message::inherited(&ctx, "applicant")["name"],
                    "item": message::inherited(&ctx, "item")["name"],
                })
            })
            .collect();
        let ctx = json!({ "today": message::local_text(now, tz), "items": items, "office": channels.office });
        let rendering = channels.clone();
        let body = crate::templating::off_thread(move || rendering.templates.render_email("digest", &minijinja::Value::from_serialize(&ctx))).await.map_err(ChannelError::Permanent)?;
        let to: Vec<Mailbox> = list
            .split(',')
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        let key = format!("digest:{}", now.with_timezone(&tz).date_naive());
        let envelope = email::Envelope { to, message_id: email::message_id(&key, &channels.mailer.from), calendar: None };
        let detail = channels.mailer.send(email::build(&channels.mailer.from, envelope, body)?).await?;
        Ok(format!("{} deadline(s) listed; {detail}", upcoming.len()))
    }

    async fn housekeeping(&self, now: DateTime<Utc>) -> Result<String, JobError> {
        let db = &self.outbox.engine.db;
        let before = now - Duration::days(i64::from(self.retention_days));
        let purged = outbox::purge_delivered(db, before).await?;
        db.execute_raw(stmt(db, "DELETE FROM job_runs WHERE started_at < ?", vec![before.timestamp_millis().into()])).await?;
        // A retry comes within minutes; a day's keys are plenty.
        let keys = crate::store::idempotency::purge(db, (now - Duration::days(1)).timestamp_millis()).await?;
        let wf = &self.outbox.engine.workflows;
        let lapsed = crate::store::credit::recompute_lapsed(db, &wf.credit, &wf.audit, now).await?;
        let depth = outbox::depth(db).await?;
        let dead = depth.iter().find(|(s, _)| s == outbox::status::DEAD).map_or(0, |(_, n)| *n);
        if dead > 0 {
            tracing::warn!(dead, "outbox holds dead letters: see deadLetters in the API");
        }
        Ok(format!(
            "purged {purged} delivered message(s) older than {} days and {keys} idempotency key(s); {lapsed} applicant(s) whose credit records' publication ended recomputed; outbox {depth:?}",
            self.retention_days
        ))
    }
}
