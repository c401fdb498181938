//! The figures of the 15% return rule (seed 002 item 66) and a standing judged by them: pure
//! data the configuration reads, the engine's rules carry and the window's quality checks apply.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The rule's figures (`[return_rule]` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReturnRule {
    /// A share at or above this suspends the officer / flags the item.
    pub threshold: f64,
    /// No judgement on fewer applications than this.
    pub min_sample: i64,
    /// The rolling window, in calendar days.
    pub window_days: i64,
}

impl Default for ReturnRule {
    fn default() -> Self {
        Self { threshold: 0.15, min_sample: 20, window_days: 30 }
    }
}

/// One officer's or item's standing under the rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rate {
    /// Applications taken in since the window opened.
    pub intake: i64,
    /// Returns counted against the officer (own error) or the item (misconfiguration).
    pub returns: i64,
    pub since: DateTime<Utc>,
}

impl Rate {
    pub fn share(&self) -> f64 {
        if self.intake == 0 { 0.0 } else { self.returns as f64 / self.intake as f64 }
    }
    /// Whether the standing suspends the officer (flags the item) under `rule`.
    pub fn breaches(&self, rule: &ReturnRule) -> bool {
        self.intake >= rule.min_sample && self.share() >= rule.threshold
    }
}
