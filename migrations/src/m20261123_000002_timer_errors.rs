use sea_orm_migration::prelude::*;

use crate::sql_migration;

// A timer whose event the engine refused is kept, marked failed, with the reason: never
// silently dropped.
sql_migration!(
    "ALTER TABLE workflow_timers ADD COLUMN last_error TEXT NULL",
    "ALTER TABLE workflow_timers DROP COLUMN last_error"
);
