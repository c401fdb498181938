use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The enterprise file (issue #19) lists an enterprise's returns; its cases, tasks, bundles and
// credit records are found by indexes already kept.
sql_migration!(
    "CREATE INDEX ix_returns_applicant ON returns (applicant_uscc, created_at)",
    "DROP INDEX ix_returns_applicant"
);
