//! Names of shipped workflow definitions that code below the domain modules must tell apart:
//! the store counts supervision tasks in the statistics, the API hides them from applicants.

/// The supervision task a licence hands to the supervising division.
pub const SUPERVISION_TASK: &str = "supervision-task";

/// The ordinary procedure (一般程序): cases without a commitment, under the legal clock.
pub const STANDARD_REVIEW: &str = "standard-review";

/// The legal clock's limit where an item names none: the Administrative Licensing Law's
/// twenty working days from acceptance (第四十二条).
pub const STATUTORY_DECISION_WORKING_DAYS: i64 = 20;

/// The most an extension of the legal clock may add, once, by the head of the department.
pub const MAX_EXTENSION_WORKING_DAYS: i64 = 10;
