//! Prometheus metrics at `/metrics`: counters and histograms recorded where things happen
//! (requests, transitions, sweeps, deliveries), gauges read from the database at each scrape
//! (timers pending and due, outbox depth by status) so they hold across processes.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DbErr, FromQueryResult};

use crate::store::{count, fetch};

pub const REQUESTS: &str = "pledgeflow_graphql_requests_total";
pub const REQUEST_SECONDS: &str = "pledgeflow_graphql_request_duration_seconds";
/// Query requests by where they read (`on`: replica or primary), with a read replica configured.
pub const QUERIES_ROUTED: &str = "pledgeflow_graphql_queries_routed_total";
/// Counted by the store, where every transition is written.
pub use crate::store::instances::TRANSITIONS;
pub const TIMERS_FIRED: &str = "pledgeflow_timers_fired_total";
pub const SWEEP_SECONDS: &str = "pledgeflow_timer_sweep_duration_seconds";
pub const OUTBOX_MESSAGES: &str = "pledgeflow_outbox_messages_total";
pub const EMAILS_SENT: &str = "pledgeflow_emails_sent_total";
/// Panics caught in a background loop (by `loop`), each followed by a restart.
pub const LOOP_PANICS: &str = "pledgeflow_loop_panics_total";
/// Messages whose building or sending panicked (by `channel`), each dead-lettered.
pub const DELIVERY_PANICS: &str = "pledgeflow_delivery_panics_total";
/// 1 while a background loop runs, 0 while it is down (by `loop`).
pub const LOOP_UP: &str = "pledgeflow_loop_up";

/// The process-wide recorder, installed on first call (early in `serve`, so start-up work such
/// as the demo's is counted too); `None` if another recorder took the slot.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            PrometheusBuilder::new().set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets).ok()?.install_recorder().ok()
        })
        .clone()
}

#[derive(FromQueryResult)]
struct Count {
    status: String,
    n: i64,
}

/// Days from `today` to the end of the last year the calendar holds an official notice for
/// (negative once past it): how long deadlines can still be counted without provisional years.
pub fn calendar_horizon_days(calendar: &crate::domain::calendar::WorkingCalendar, today: chrono::NaiveDate) -> i64 {
    let last = calendar.years().filter(|y| !calendar.is_provisional_year(*y)).max();
    last.and_then(|y| chrono::NaiveDate::from_ymd_opt(y, 12, 31)).map_or(0, |end| (end - today).num_days())
}

/// The current figures as Prometheus text: the recorded ones and the database's gauges.
pub async fn render(handle: &PrometheusHandle, engine: &crate::runtime::Engine) -> Result<String, DbErr> {
    let (db, now) = (&engine.db, engine.now());
    let now_ms = now.timestamp_millis();
    let due = count(db, "SELECT COUNT(*) AS n FROM workflow_timers WHERE status = 'pending' AND due_at <= ?", vec![now_ms.into()]).await?;
    let pending = count(db, "SELECT COUNT(*) AS n FROM workflow_timers WHERE status = 'pending'", vec![]).await?;
    metrics::gauge!("pledgeflow_timers_pending").set(pending as f64);
    metrics::gauge!("pledgeflow_timers_due").set(due as f64);
    // How long the oldest due timer has waited: a sweeper falling behind (or none running).
    let oldest = count(db, "SELECT COALESCE(MIN(due_at), 0) AS n FROM workflow_timers WHERE status = 'pending' AND due_at <= ?", vec![now_ms.into()]).await?;
    let lag = if oldest == 0 { 0.0 } else { (now_ms - oldest).max(0) as f64 / 1000.0 };
    metrics::gauge!("pledgeflow_timer_sweep_lag_seconds").set(lag);
    let env = &engine.workflows.env;
    metrics::gauge!("pledgeflow_calendar_horizon_days").set(calendar_horizon_days(&env.calendar.get(), now.with_timezone(&env.tz).date_naive()) as f64);
    // Pending (of which retrying after a failure) and dead: both read through partial indexes.
    let rows: Vec<Count> = fetch(
        db,
        "SELECT CASE WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END AS status, COUNT(*) AS n FROM outbox WHERE status = 'pending' \
             GROUP BY CASE WHEN attempts > 0 THEN 'retrying' ELSE 'pending' END \
             UNION ALL SELECT 'dead' AS status, COUNT(*) AS n FROM outbox WHERE status = 'dead'",
        vec![],
    )
    .await?;
    let mut depth = std::collections::BTreeMap::from([("pending".to_string(), 0), ("retrying".to_string(), 0), ("dead".to_string(), 0)]);
    for c in rows {
        depth.insert(c.status, c.n);
    }
    for (status, n) in depth {
        metrics::gauge!("pledgeflow_outbox_depth", "status" => status).set(n as f64);
    }
    Ok(handle.render())
}
