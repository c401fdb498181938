use sea_orm_migration::prelude::*;

use crate::sql_migration;

// Who may see an instance: its region, department and division (staff), and the applicant's
// unified social credit code; indexed so that every list is filtered in the database. And the
// idempotency keys of mutations, so that a retried request does not act twice.

const UP: &str = r#"
ALTER TABLE workflow_instances ADD COLUMN region TEXT NULL;
ALTER TABLE workflow_instances ADD COLUMN department TEXT NULL;
ALTER TABLE workflow_instances ADD COLUMN division TEXT NULL;
ALTER TABLE workflow_instances ADD COLUMN applicant_uscc TEXT NULL;
CREATE INDEX ix_instances_region ON workflow_instances (region, created_at);
CREATE INDEX ix_instances_department ON workflow_instances (department, created_at);
CREATE INDEX ix_instances_division ON workflow_instances (division, created_at);
CREATE INDEX ix_instances_applicant ON workflow_instances (applicant_uscc, created_at);
CREATE TABLE idempotency_keys (
    subject    TEXT   NOT NULL,
    key        TEXT   NOT NULL,
    operation  TEXT   NOT NULL,
    result     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (subject, key)
)
"#;

const DOWN: &str = r#"
DROP TABLE idempotency_keys;
DROP INDEX ix_instances_applicant;
DROP INDEX ix_instances_division;
DROP INDEX ix_instances_department;
DROP INDEX ix_instances_region;
ALTER TABLE workflow_instances DROP COLUMN applicant_uscc;
ALTER TABLE workflow_instances DROP COLUMN division;
ALTER TABLE workflow_instances DROP COLUMN department;
ALTER TABLE workflow_instances DROP COLUMN region
"#;

sql_migration!(
    UP,
    DOWN
);
