use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The return rule corrects, never closes (issue #18): a flagged item stays open; its flag
// points at the re-examination its department's approvers are given, and clears when they
// record it or a new version of the item is published. The department is scored for it.
sql_migration!(
    "ALTER TABLE item_flags ADD COLUMN department TEXT;
    ALTER TABLE item_flags ADD COLUMN reexamination_id TEXT;
    ALTER TABLE item_flags ADD COLUMN cleared_at BIGINT;
    ALTER TABLE item_flags ADD COLUMN cleared_by TEXT;
    ALTER TABLE item_flags ADD COLUMN cleared_how TEXT;
    CREATE TABLE department_scores (
        id          TEXT   PRIMARY KEY,
        department  TEXT   NOT NULL,
        item_code   TEXT   NOT NULL,
        item_version BIGINT NOT NULL,
        deduction   BIGINT NOT NULL,
        reason      TEXT   NOT NULL,
        created_at  BIGINT NOT NULL
    );
    CREATE INDEX ix_department_scores ON department_scores (department, created_at)",
    "DROP INDEX ix_department_scores;
    DROP TABLE department_scores;
    ALTER TABLE item_flags DROP COLUMN cleared_how;
    ALTER TABLE item_flags DROP COLUMN cleared_by;
    ALTER TABLE item_flags DROP COLUMN cleared_at;
    ALTER TABLE item_flags DROP COLUMN reexamination_id;
    ALTER TABLE item_flags DROP COLUMN department"
);
