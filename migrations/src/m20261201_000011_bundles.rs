use sea_orm_migration::prelude::*;

use crate::sql_migration;

// One application, many licences (issue #9): a bundle's children, in the order its definition
// declares, each with what it is opened with once its prerequisites hold; an enterprise being
// established, identified by its reserved name and legal representative until the business
// licence gives it a unified social credit code; and the deregistrations of business licences.

const UP: &str = r#"
CREATE TABLE bundle_children (
    bundle_id   TEXT   NOT NULL REFERENCES workflow_instances (id),
    position    BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    item_code   TEXT   NULL,
    request     TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    instance_id TEXT   NULL UNIQUE REFERENCES workflow_instances (id),
    note        TEXT   NULL,
    started_at  BIGINT NULL,
    PRIMARY KEY (bundle_id, position)
);
CREATE TABLE establishments (
    registration_id         TEXT   PRIMARY KEY REFERENCES workflow_instances (id),
    bundle_id               TEXT   NOT NULL REFERENCES workflow_instances (id),
    reserved_name           TEXT   NOT NULL,
    legal_representative    TEXT   NOT NULL,
    legal_representative_id TEXT   NOT NULL,
    department              TEXT   NOT NULL REFERENCES departments (code),
    email                   TEXT   NULL,
    mobile                  TEXT   NULL,
    uscc                    TEXT   NULL UNIQUE,
    registered_at           BIGINT NULL,
    created_at              BIGINT NOT NULL
);
CREATE TABLE deregistrations (
    uscc       TEXT   PRIMARY KEY REFERENCES applicants (uscc),
    reason     TEXT   NOT NULL,
    officer    TEXT   NOT NULL,
    department TEXT   NOT NULL REFERENCES departments (code),
    ended      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
)
"#;

const DOWN: &str = r#"
DROP TABLE deregistrations;
DROP TABLE establishments;
DROP TABLE bundle_children
"#;

sql_migration!(UP, DOWN);
