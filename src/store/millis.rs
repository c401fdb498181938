//! Instants as the database keeps them: milliseconds since the Unix epoch.

use chrono::{DateTime, TimeZone, Utc};

pub fn from_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
