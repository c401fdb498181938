//! Wiring: from a configuration to a running process.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::{ClockMode, Config};
use crate::delivery::{Channels, Outbox};
use crate::{jobs, scheduler};
use crate::runtime::Engine;
use crate::store::{self, Workflows};
use crate::workflow::{self, TimeEnv};

/// From 1 October, next year's official calendar should be on file: until it is, deadlines
/// counted into that year are provisional.
pub fn warn_of_missing_year(calendar: &crate::domain::calendar::SharedCalendar, now: chrono::DateTime<chrono::Utc>, tz: chrono_tz::Tz) {
    if let Some(year) = crate::domain::calendar::next_year_missing(&calendar.get(), now.with_timezone(&tz).date_naive()) {
        tracing::warn!(year, "the official holiday calendar for {year} is not on file: deadlines counted into it are provisional; import the State Council's notice with `pledgeflow calendar import FILE`");
    }
}

/// Loads and checks the definitions, connects, migrates and deploys them. Refuses to go on
/// when any definition has a problem.
pub async fn build_engine(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Engine> {
    let source = config.workflows();
    let loaded = workflow::load(&source).map_err(|problems| {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("workflow definitions from {} have {} problem(s):\n{}", source.describe(), list.len(), list.join("\n"))
    })?;
    let db = store::connect(&config.database_url, config.database_max_connections)
        .await
        .with_context(|| format!("connecting to {}", crate::config::redact(&config.database_url)))?;
    store::migrate(&db).await.context("running migrations")?;
    let mut set = loaded.workflows;
    store::definitions::deploy(&db, &mut set, clock.now().timestamp_millis()).await?;
    // Before anything writes an event: the trail is keyed from its first write on.
    let audit = crate::trail::keys(config, true)?;
    store::seal::start_up(&db, &audit, clock.now()).await.context("keying the audit trail")?;
    // The domain effects the definitions name, each served by the module it belongs to.
    let effects = store::workflows::EffectHandlers::default().with(store::workflows::BUNDLE_ADVANCE, Arc::new(crate::window::bundle::Advance));
    let unserved = effects.missing(&set);
    if !unserved.is_empty() {
        anyhow::bail!("workflow definitions name effects no module serves:\n{}", unserved.join("\n"));
    }
    // The shipped (or configured) calendar files with the years imported into the database.
    let shipped = source.sub("calendars").files("toml").map_err(|u| anyhow::anyhow!("{}: {}", u.place, u.reason))?;
    let calendar = crate::domain::calendar::SharedCalendar::new(shipped)?;
    store::calendar_files::refresh(&db, &calendar).await?;
    warn_of_missing_year(&calendar, clock.now(), config.timezone);
    let workflows = Workflows { set, env: TimeEnv { calendar, tz: config.timezone }, credit: config.credit.clone(), returns: config.return_rule.clone(), audit, effects };
    let confirmed = store::provisional::confirm(&db, &workflows, clock.now()).await.context("recomputing provisional deadlines")?;
    if confirmed != Default::default() {
        tracing::info!(extended = confirmed.extended, kept = confirmed.kept, still_provisional = confirmed.still_provisional, "provisional deadlines checked against the calendar on file");
    }
    if store::rollup::ensure(&db, workflows.env.tz).await.context("counting the statistics rollup")? {
        tracing::info!(zone = %workflows.env.tz, "statistics rollup counted from the cases on file");
    }
    // Names written before the name index: indexed once (a read-only copy serves without them).
    match store::name_index::backfill(&db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(applicants = n, "applicant names indexed for search"),
        Err(e) => tracing::warn!(error = %e, "applicant names could not be indexed: name search misses them until the next start"),
    }
    Ok(Engine { db, workflows: Arc::new(workflows), clock })
}

/// A bound, ready server; `run` serves until `shutdown` resolves.
pub struct Application {
    listener: TcpListener,
    engine: Engine,
    channels: Arc<Channels>,
    manual_clock: Option<ManualClock>,
    config: Config,
}

impl Application {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        match config.clock {
            ClockMode::System => Self::with_engine(config, build_engine(config, Arc::new(SystemClock)).await?, None).await,
            ClockMode::Manual => {
                let clock = ManualClock::at(config.clock_start.unwrap_or_else(chrono::Utc::now));
                let engine = build_engine(config, Arc::new(clock.clone())).await?;
                // Where the clock stood when this server last stopped (or its configured start),
                // never before the events already written.
                let at = store::training_clock::resume_at(&engine.db, config.clock_start, chrono::Utc::now()).await?;
                clock.set(at);
                store::training_clock::keep(&engine.db, at).await?;
                tracing::warn!(%at, "PLEDGEFLOW_CLOCK=manual: this server's time is moved by operators (advanceClock); never use it for real cases");
                Self::with_engine(config, engine, Some(clock)).await
            }
        }
    }

    pub async fn with_engine(config: &Config, engine: Engine, manual_clock: Option<ManualClock>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let channels = Arc::new(Channels::from_config(config, &engine.workflows.set)?);
        Ok(Self { listener, engine, channels, manual_clock, config: config.clone() })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Serves HTTP with the timer sweeper, the outbox worker and the daily jobs beside it; all
    /// stop on `shutdown`, each after the work in hand.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let config = &self.config;
        let channels = self.channels.clone();
        tracing::info!(mail = %channels.mailer.describe(), sms = %channels.webhooks.describe("sms"), "outbox channels");
        let outbox = Outbox::new(self.engine.clone(), channels, config);
        let wake = Arc::new(tokio::sync::Notify::new());
        let tz = self.engine.workflows.env.tz;
        // Every loop runs supervised: a panic is logged, counted and followed by a restart, and
        // `/readyz` says unready while a loop is down or behind.
        let loops = crate::health::Loops::default();
        let minute = std::time::Duration::from_secs(60);
        let sweep_stall = scheduler::period(&config.sweep_schedule, tz).map(|p| p * 3 + minute);
        loops.register(scheduler::SWEEPER, sweep_stall);
        loops.register(scheduler::OUTBOX, Some(minute));
        let mut tasks = vec![
            scheduler::supervise(scheduler::SWEEPER, loops.clone(), stop_rx.clone(), {
                let (engine, schedule, worker, stop, loops) = (self.engine.clone(), config.sweep_schedule.clone(), worker.clone(), stop_rx.clone(), loops.clone());
                move || scheduler::run_sweeper(engine.clone(), schedule.clone(), worker.clone(), stop.clone(), loops.clone())
            }),
            scheduler::supervise(scheduler::OUTBOX, loops.clone(), stop_rx.clone(), {
                let (outbox, worker, wake, stop, loops) = (outbox.clone(), worker.clone(), wake.clone(), stop_rx.clone(), loops.clone());
                move || scheduler::run_outbox(outbox.clone(), worker.clone(), std::time::Duration::from_secs(2), wake.clone(), stop.clone(), loops.clone())
            }),
        ];
        let daily = [
            (jobs::Job::Digest, &config.digest_schedule),
            (jobs::Job::Housekeeping, &config.housekeeping_schedule),
            (jobs::Job::Draw, &config.draw_schedule),
        ];
        for (job, schedule) in daily {
            let jobs = jobs::Jobs::new(outbox.clone(), config.retention_days).with_sampling(config.sampling.clone());
            let (worker, schedule, stop, watch) = (worker.clone(), schedule.clone(), stop_rx.clone(), loops.clone());
            loops.register(job.name(), None);
            tasks.push(scheduler::supervise(job.name(), loops.clone(), stop_rx.clone(), move || {
                let (jobs, worker, watch) = (jobs.clone(), worker.clone(), watch.clone());
                scheduler::on_schedule(schedule.clone(), tz, stop.clone(), move |at| {
                    let (jobs, worker, watch) = (jobs.clone(), worker.clone(), watch.clone());
                    async move {
                        watch.begin(job.name());
                        jobs.run_logged(job, at, &worker).await;
                        watch.end(job.name());
                    }
                })
            }));
        }
        // Anchors the trail outside the database: a sealed checkpoint of every chain's head.
        loops.register(scheduler::CHECKPOINT, None);
        tasks.push(scheduler::supervise(scheduler::CHECKPOINT, loops.clone(), stop_rx.clone(), {
            let (engine, schedule, path, stop, loops) = (self.engine.clone(), config.audit_checkpoint_schedule.clone(), crate::trail::checkpoint_path(config), stop_rx.clone(), loops.clone());
            move || scheduler::run_checkpoints(engine.clone(), schedule.clone(), path.clone(), stop.clone(), loops.clone())
        }));
        let keys = crate::auth::keys(&self.engine.db, &config.tokens()).await?;
        let reads = match &config.read_database_url {
            Some(url) => Some(crate::api::reads::ReadReplica::connect(url, config.database_max_connections).await?),
            None => None,
        };
        let engine = self.engine.clone();
        let services = crate::api::Services { engine: self.engine, outbox, manual_clock: self.manual_clock, wake, worker: worker.clone(), keys, live_poll: std::time::Duration::from_secs(1), loops, sampling: config.sampling.clone(), metrics: crate::telemetry::install(), reads, public_limiter: std::sync::Arc::new(crate::api::public::PublicLimiter::per_minute(config.public_requests_per_minute)) };
        let router = crate::api::router(services, config);
        let mut limits = config.http.clone();
        crate::edge::fit_to_open_file_limit(&mut limits);
        tracing::info!(?limits, "HTTP edge");
        let served = crate::edge::serve(self.listener, router, limits, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
        // The loops finish the sweep or delivery in hand, then stop; what is still claimed is given back.
        for task in tasks {
            let _ = task.await;
        }
        match crate::store::release_claims(&engine.db, &worker, engine.now()).await {
            Ok(n) => tracing::info!(released = n, "stopped: in-flight work finished, claims released"),
            Err(e) => tracing::warn!(error = %e, "stopped; claims not released (they lapse with their lease)"),
        }
        served?;
        Ok(())
    }
}


pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
