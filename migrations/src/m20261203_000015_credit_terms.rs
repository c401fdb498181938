use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Credit that fits the breach (issue #18): each record carries its category (general / serious),
// the end of its publication period, and the earliest day it may be repaired. Records written
// before have none and are read by the rules' defaults for their kind.
sql_migration!(
    "ALTER TABLE credit_records ADD COLUMN category TEXT;
    ALTER TABLE credit_records ADD COLUMN publish_until BIGINT;
    ALTER TABLE credit_records ADD COLUMN repairable_from BIGINT",
    "ALTER TABLE credit_records DROP COLUMN repairable_from;
    ALTER TABLE credit_records DROP COLUMN publish_until;
    ALTER TABLE credit_records DROP COLUMN category"
);
