//! Time-driven work. Cron schedules (`cron` crate: six or seven fields, seconds first) are
//! read in the office's zone; the outbox is polled every few seconds, since a message
//! written by a transition should leave at once.

use std::{future::Future, str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cron::Schedule;
use tokio::sync::watch;

use crate::delivery::Outbox;
use crate::runtime::Engine;

pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    Schedule::from_str(expr).map_err(|e| format!("{e} (six fields, seconds first, e.g. \"0 * * * * *\")"))
}

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

/// Fires due timers at every occurrence of `schedule`. A failed sweep is logged and the next
/// occurrence tries again: due timers stay pending until fired.
pub async fn run_sweeper(engine: Engine, schedule: Schedule, worker: String, shutdown: watch::Receiver<bool>) {
    let tz = engine.workflows.env.tz;
    on_schedule(schedule, tz, shutdown, |_| sweep_once(&engine, &worker)).await
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
pub async fn run_outbox(outbox: Outbox, worker: String, every: Duration, wake: std::sync::Arc<tokio::sync::Notify>, mut shutdown: watch::Receiver<bool>) {
    loop {
        deliver_once(&outbox, &worker).await;
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
