//! Whether this process's background loops are running and keeping up. The loops write it (a
//! pass begun, a pass ended, a panic and the restart after it); `/readyz` and `/metrics` read
//! it. A leaf: it knows nothing of what the loops do.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

#[derive(Clone, Default)]
pub struct Loops(Arc<Mutex<BTreeMap<&'static str, LoopState>>>);

struct LoopState {
    up: bool,
    busy_since: Option<Instant>,
    last_end: Instant,
    /// No pass ended for this long (while not busy) means the loop is stuck between passes.
    stall_after: Option<Duration>,
    restarts: u64,
    last_panic: Option<String>,
}

/// One loop as `/readyz` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoopReport {
    pub name: &'static str,
    pub up: bool,
    /// Why the loop is behind, when it is.
    pub behind: Option<String>,
    pub restarts: u64,
    pub last_panic: Option<String>,
}

impl LoopReport {
    pub fn healthy(&self) -> bool {
        self.up && self.behind.is_none()
    }
}

impl Loops {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<&'static str, LoopState>) -> R) -> R {
        // A panic elsewhere while holding the lock leaves plain data behind: still usable.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A loop this process runs; `stall_after` for loops with a regular period.
    pub fn register(&self, name: &'static str, stall_after: Option<Duration>) {
        self.with(|m| {
            m.insert(name, LoopState { up: true, busy_since: None, last_end: Instant::now(), stall_after, restarts: 0, last_panic: None });
        });
    }

    pub fn begin(&self, name: &'static str) {
        self.with(|m| {
            if let Some(s) = m.get_mut(name) {
                s.busy_since = Some(Instant::now());
            }
        });
    }

    pub fn end(&self, name: &'static str) {
        self.with(|m| {
            if let Some(s) = m.get_mut(name) {
                s.busy_since = None;
                s.last_end = Instant::now();
            }
        });
    }

    /// The loop panicked: down until it is restarted.
    pub fn down(&self, name: &'static str, why: String) {
        self.with(|m| {
            if let Some(s) = m.get_mut(name) {
                s.up = false;
                s.busy_since = None;
                s.last_panic = Some(why);
            }
        });
    }

    pub fn restarted(&self, name: &'static str) {
        self.with(|m| {
            if let Some(s) = m.get_mut(name) {
                s.up = true;
                s.restarts += 1;
                s.last_end = Instant::now();
            }
        });
    }

    /// Every loop; one is behind when a pass has run longer than `max_pass`, or no pass has
    /// ended for longer than its `stall_after`.
    pub fn report(&self, max_pass: Duration) -> Vec<LoopReport> {
        let now = Instant::now();
        self.with(|m| {
            m.iter()
                .map(|(name, s)| {
                    let behind = match s.busy_since {
                        Some(since) if now - since > max_pass => Some(format!("a pass has run for {} s", (now - since).as_secs())),
                        Some(_) => None,
                        None => s.stall_after.filter(|limit| now - s.last_end > *limit).map(|_| format!("no pass for {} s", (now - s.last_end).as_secs())),
                    };
                    LoopReport { name, up: s.up, behind, restarts: s.restarts, last_panic: s.last_panic.clone() }
                })
                .collect()
        })
    }
}

/// Fault injection for the fault tests, from `PLEDGEFLOW_FAULTS` (read once): `deliver:TOPIC`
/// makes delivering every message of TOPIC panic; `loop:NAME` makes that loop panic on its
/// first pass in this process. Never set in production; unset, it is nothing.
pub fn fault(kind: &str, name: &str) -> bool {
    static FAULTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    static LOOPS_HIT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let faults = FAULTS.get_or_init(|| std::env::var("PLEDGEFLOW_FAULTS").unwrap_or_default().split(',').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect());
    let wanted = format!("{kind}:{name}");
    if !faults.contains(&wanted) {
        return false;
    }
    if kind != "loop" {
        return true;
    }
    let mut hit = LOOPS_HIT.lock().unwrap_or_else(PoisonError::into_inner);
    if hit.contains(&wanted) {
        false
    } else {
        hit.push(wanted);
        true
    }
}

/// The message a panic carried, if it was text.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_unhealthy_while_down_or_stuck_in_a_pass() {
        let loops = Loops::default();
        loops.register("outbox", Some(Duration::from_secs(3600)));
        assert!(loops.report(Duration::from_secs(60))[0].healthy());
        loops.begin("outbox");
        assert!(loops.report(Duration::ZERO)[0].behind.is_some(), "a pass longer than allowed");
        loops.down("outbox", "boom".into());
        let r = &loops.report(Duration::from_secs(60))[0];
        assert!(!r.up && r.last_panic.as_deref() == Some("boom"));
        loops.restarted("outbox");
        let r = &loops.report(Duration::from_secs(60))[0];
        assert!(r.healthy() && r.restarts == 1);
        loops.register("sweeper", Some(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(5));
        assert!(loops.report(Duration::from_secs(60)).iter().any(|r| r.name == "sweeper" && r.behind.is_some()), "no pass within its period");
    }
}
