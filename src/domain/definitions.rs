//! Names of shipped workflow definitions that code below the domain modules must tell apart:
//! the store counts supervision tasks in the statistics, the API hides them from applicants.

/// The supervision task a licence hands to the supervising division.
pub const SUPERVISION_TASK: &str = "supervision-task";
