use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Delivery bookkeeping: every attempt of every outbox row (so an admin sees why a message
// is dead), one row per occurrence of a daily job (so several processes run it once), and
// server settings such as the generated token secret.

const UP: &str = r#"
CREATE TABLE outbox_attempts (
    outbox_id  TEXT   NOT NULL REFERENCES outbox (id),
    attempt    BIGINT NOT NULL,
    worker     TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    outcome    TEXT   NOT NULL,
    detail     TEXT   NULL,
    PRIMARY KEY (outbox_id, attempt)
);
CREATE INDEX ix_outbox_status_created ON outbox (status, created_at);

CREATE TABLE job_runs (
    job         TEXT   NOT NULL,
    occurrence  BIGINT NOT NULL,
    worker      TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NULL,
    summary     TEXT   NULL,
    PRIMARY KEY (job, occurrence)
);

CREATE TABLE settings (
    key        TEXT   PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
)
"#;

const DOWN: &str = r#"
DROP TABLE settings;
DROP TABLE job_runs;
DROP INDEX ix_outbox_status_created;
DROP TABLE outbox_attempts
"#;

sql_migration!(
    UP,
    DOWN
);
