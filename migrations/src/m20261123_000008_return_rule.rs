use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The 15% return rule (seed 002 item 66): a window officer suspended from intake until
// retrained; an approval item flagged for re-configuration until a new version is put. And an
// index for counting dead letters (/metrics), and when each case was licensed, in working days
// from intake (statistics).
sql_migration!(
    "CREATE TABLE officer_suspensions (
        id            TEXT   PRIMARY KEY,
        officer       TEXT   NOT NULL,
        department    TEXT   NOT NULL,
        suspended_at  BIGINT NOT NULL,
        own_errors    BIGINT NOT NULL,
        intake        BIGINT NOT NULL,
        reinstated_at BIGINT NULL,
        reinstated_by TEXT   NULL,
        retraining    TEXT   NULL
    );
    CREATE INDEX ix_suspensions_officer ON officer_suspensions (officer, suspended_at);
    CREATE TABLE item_flags (
        id           TEXT   PRIMARY KEY,
        item_code    TEXT   NOT NULL,
        item_version BIGINT NOT NULL,
        flagged_at   BIGINT NOT NULL,
        misconfigured BIGINT NOT NULL,
        intake       BIGINT NOT NULL,
        UNIQUE (item_code, item_version)
    );
    CREATE INDEX ix_cases_opened_by ON cases (opened_by, created_at);
    CREATE INDEX ix_cases_item ON cases (item_code, created_at);
    CREATE INDEX ix_returns_item ON returns (item_code, created_at);
    CREATE INDEX ix_outbox_dead ON outbox (created_at) WHERE status = 'dead';
    ALTER TABLE cases ADD COLUMN licensed_at BIGINT NULL;
    ALTER TABLE cases ADD COLUMN licence_working_days BIGINT NULL;
    CREATE INDEX ix_instances_stats ON workflow_instances (department, created_at, parent_id, definition_name, state);
    CREATE INDEX ix_cases_stats ON cases (department, created_at, mode, licence_working_days, licensed_at)",
    "DROP INDEX ix_cases_stats; DROP INDEX ix_instances_stats; ALTER TABLE cases DROP COLUMN licence_working_days; ALTER TABLE cases DROP COLUMN licensed_at; DROP INDEX ix_outbox_dead; DROP INDEX ix_returns_item; DROP INDEX ix_cases_item; DROP INDEX ix_cases_opened_by; DROP TABLE item_flags; DROP TABLE officer_suspensions"
);
