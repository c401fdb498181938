use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Supervisors' figures kept as running counts per local day, department, item and mode, moved
// in the transaction of whatever changes them, so a dashboard reads a few thousand rows instead
// of probing the events of a million cases. `day` is the local day the figure belongs to (of
// intake; of the licence or the return for those counts); `key` the figure's own dimension
// (a state, a cause, a division, a number of working days). Filled from the existing cases at
// start-up, where the office's zone is known (`store::rollup::ensure`).
sql_migration!(
    "CREATE TABLE statistics_rollup (
        department TEXT   NOT NULL,
        day        BIGINT NOT NULL,
        item_code  TEXT   NOT NULL,
        mode       TEXT   NOT NULL,
        metric     TEXT   NOT NULL,
        key        TEXT   NOT NULL,
        n          BIGINT NOT NULL,
        PRIMARY KEY (department, day, item_code, mode, metric, key)
    );
    -- The part-days at a range's ends are counted directly: licences and returns by their own
    -- instants, which no index led with before (a series' licences scanned every case).
    CREATE INDEX ix_cases_licensed ON cases (department, licensed_at);
    CREATE INDEX ix_returns_department ON returns (department, created_at)",
    "DROP INDEX ix_returns_department; DROP INDEX ix_cases_licensed; DROP TABLE statistics_rollup"
);
