//! Cron-driven sweeps. The schedule (`cron` crate: six or seven fields, seconds first) is read
//! in the office's zone; each occurrence fires every due timer through the engine.

use std::str::FromStr;

use chrono::Utc;
use cron::Schedule;
use tokio::sync::watch;

use crate::runtime::Engine;

pub fn parse_schedule(expr: &str) -> Result<Schedule, String> {
    Schedule::from_str(expr).map_err(|e| format!("{e} (six fields, seconds first, e.g. \"0 * * * * *\")"))
}

/// Sweeps at every occurrence of `schedule` until `shutdown` turns true. A failed sweep is
/// logged and the next occurrence tries again: due timers stay pending until fired.
pub async fn run_sweeper(engine: Engine, schedule: Schedule, worker: String, mut shutdown: watch::Receiver<bool>) {
    let tz = engine.workflows.env.tz;
    loop {
        let Some(next) = schedule.after(&Utc::now().with_timezone(&tz)).next() else { return };
        let wait = (next.with_timezone(&Utc) - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        match engine.sweep(&worker).await {
            Ok(r) if r.fired + r.failed + r.stale + r.retried > 0 => {
                tracing::info!(fired = r.fired, failed = r.failed, stale = r.stale, retried = r.retried, "timer sweep")
            }
            Ok(_) => tracing::debug!("timer sweep: nothing due"),
            Err(e) => tracing::error!(error = %e, "timer sweep failed; retried at the next occurrence"),
        }
        if *shutdown.borrow() {
            return;
        }
    }
}
