//! Time-driven work. Cron schedules (`cron` crate: six or seven fields, seconds first) are
//! read in the office's zone; the outbox is polled every few seconds, since a message
//! written by a transition should leave at once.

use std::{future::Future, time::Duration};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cron::Schedule;
use tokio::sync::watch;

use crate::delivery::Outbox;
use crate::health::Loops;
use crate::runtime::Engine;

/// Runs `job` at every occurrence of `schedule` (in `tz`) until `shutdown` turns true. The
/// occurrence is passed on, so a job can tell which run it is (daily jobs run once per
/// occurrence however many processes serve).
pub async fn on_schedule<F, Fut>(schedule: Schedule, tz: Tz, mut shutdown: watch::Receiver<bool>, mut job: F)
where
    F: FnMut(DateTime<Utc>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let Some(next) = schedule.after(&Utc::now().with_timezone(&tz)).next() else { return };
        let next = next.with_timezone(&Utc);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        job(next).await;
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Runs the loop `make` builds in a task of its own and, when it panics, logs and counts the
/// panic, marks the loop down in `loops`, and starts it again after a backoff (1 s, doubling to
/// a minute); returns when the loop returns (shutdown).
pub fn supervise<F, Fut>(name: &'static str, loops: Loops, mut shutdown: watch::Receiver<bool>, mut make: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        loop {
            match tokio::spawn(make()).await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    let why = crate::health::panic_text(&*e.into_panic());
                    metrics::counter!(crate::telemetry::LOOP_PANICS, "loop" => name).increment(1);
                    tracing::error!(r#loop = name, panic = %why, backoff_seconds = backoff.as_secs(), "background loop panicked; restarting it");
                    loops.down(name, why);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    if *shutdown.borrow() {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    loops.restarted(name);
                }
                Err(_) => return,
            }
        }
    })
}

/// The time between two occurrences of `schedule` from now: the period a loop on it keeps.
pub fn period(schedule: &Schedule, tz: Tz) -> Option<Duration> {
    let mut next = schedule.after(&Utc::now().with_timezone(&tz));
    let (a, b) = (next.next()?, next.next()?);
    (b - a).to_std().ok()
}

/// Fires due timers at every occurrence of `schedule`. A failed sweep is logged and the next
/// occurrence tries again: due timers stay pending until fired.
pub async fn run_sweeper(engine: Engine, schedule: Schedule, worker: String, shutdown: watch::Receiver<bool>, loops: Loops) {
    let tz = engine.workflows.env.tz;
    on_schedule(schedule, tz, shutdown, |_| async {
        loops.begin(SWEEPER);
        sweep_once(&engine, &worker).await;
        loops.end(SWEEPER);
    })
    .await
}

/// The loops' names, as `/readyz` and `/metrics` show them.
pub const SWEEPER: &str = "sweeper";
pub const OUTBOX: &str = "outbox";
pub const CHECKPOINT: &str = "checkpoint";

/// Appends a sealed checkpoint of every instance's chain head to `path` at every occurrence of
/// `schedule`. A failed one is logged; the next occurrence writes what it missed.
pub async fn run_checkpoints(engine: Engine, schedule: Schedule, path: std::path::PathBuf, shutdown: watch::Receiver<bool>, loops: Loops) {
    let tz = engine.workflows.env.tz;
    on_schedule(schedule, tz, shutdown, |_| async {
        loops.begin(CHECKPOINT);
        match crate::trail::write_checkpoint(&engine.db, &engine.workflows.audit, &path, engine.now(), false).await {
            Ok(c) => tracing::info!(file = %path.display(), heads = c.heads.len(), instances = c.instances, "audit checkpoint written"),
            Err(e) => tracing::error!(error = %e, file = %path.display(), "audit checkpoint failed; retried at the next occurrence"),
        }
        loops.end(CHECKPOINT);
    })
    .await
}

pub async fn sweep_once(engine: &Engine, worker: &str) {
    let started = std::time::Instant::now();
    let swept = engine.sweep(worker).await;
    metrics::histogram!(crate::telemetry::SWEEP_SECONDS).record(started.elapsed().as_secs_f64());
    if let Ok(r) = &swept {
        metrics::counter!(crate::telemetry::TIMERS_FIRED).increment(r.fired as u64);
    }
    match swept {
        Ok(r) if r.fired + r.failed + r.stale + r.retried > 0 => {
            tracing::info!(fired = r.fired, failed = r.failed, stale = r.stale, retried = r.retried, "timer sweep")
        }
        Ok(_) => tracing::debug!("timer sweep: nothing due"),
        Err(e) => tracing::error!(error = %e, "timer sweep failed; retried at the next occurrence"),
    }
}

/// Delivers due outbox rows every `every`, and at once when `wake` is notified.
pub async fn run_outbox(outbox: Outbox, worker: String, every: Duration, wake: std::sync::Arc<tokio::sync::Notify>, mut shutdown: watch::Receiver<bool>, loops: Loops) {
    loop {
        loops.begin(OUTBOX);
        if crate::health::fault("loop", OUTBOX) {
            panic!("fault injected: the outbox loop");
        }
        deliver_once(&outbox, &worker).await;
        loops.end(OUTBOX);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

pub async fn deliver_once(outbox: &Outbox, worker: &str) {
    match outbox.deliver_due(worker).await {
        Ok(r) if r.delivered + r.failed + r.dead + r.skipped + r.lost > 0 => {
            tracing::info!(delivered = r.delivered, failed = r.failed, dead = r.dead, skipped = r.skipped, lost = r.lost, "outbox")
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "outbox delivery failed; retried shortly"),
    }
}
