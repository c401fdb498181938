use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Calendar years imported into a running installation (`pledgeflow calendar import`, issue #21):
// the State Council's notice for next year, loaded by every server without a restart.
sql_migration!(
    "CREATE TABLE calendar_files (
        name        TEXT   PRIMARY KEY,
        body        TEXT   NOT NULL,
        imported_at BIGINT NOT NULL
    )",
    "DROP TABLE calendar_files"
);
