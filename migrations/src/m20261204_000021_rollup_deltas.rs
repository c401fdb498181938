use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The statistics rollup's changes, written insert-only by the transaction that causes them and
// folded into `statistics_rollup` by the sweep (issue #22): a transaction no longer holds
// today's shared rows of its item to its commit. Queries sum the folded rows and this tail.
// No key: rows are only ever inserted, summed and deleted all together.
sql_migration!(
    "CREATE TABLE statistics_rollup_deltas (
        department TEXT   NOT NULL,
        day        BIGINT NOT NULL,
        item_code  TEXT   NOT NULL,
        mode       TEXT   NOT NULL,
        metric     TEXT   NOT NULL,
        key        TEXT   NOT NULL,
        n          BIGINT NOT NULL
    )",
    "DROP TABLE statistics_rollup_deltas"
);
