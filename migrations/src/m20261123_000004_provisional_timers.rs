use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Timers counted over a provisional calendar year (computed from the statutory holidays
// before the official notice is on file) are marked, so they can be recomputed when it is.
sql_migration!(
    "ALTER TABLE workflow_timers ADD COLUMN provisional BIGINT NOT NULL DEFAULT 0;
             CREATE INDEX ix_timers_provisional ON workflow_timers (instance_id) WHERE provisional = 1 AND status = 'pending'",
    "DROP INDEX ix_timers_provisional; ALTER TABLE workflow_timers DROP COLUMN provisional"
);
