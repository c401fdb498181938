use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The window's world: the organisation, the catalogue (approval items versioned: a running
// case keeps the version it started with), applicants with their credit status, cases beside
// their workflow instances, materials per case, returns, licence numbers, electronic licences.

const UP: &str = r#"
CREATE TABLE regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE departments (
    code   TEXT PRIMARY KEY,
    region TEXT NOT NULL REFERENCES regions (code),
    name   TEXT NOT NULL,
    side   TEXT NOT NULL,
    email  TEXT NULL
);
CREATE TABLE divisions (
    code       TEXT PRIMARY KEY,
    department TEXT NOT NULL REFERENCES departments (code),
    name       TEXT NOT NULL,
    email      TEXT NULL
);
CREATE TABLE staff (
    id         TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    department TEXT   NOT NULL REFERENCES departments (code),
    division   TEXT   NULL REFERENCES divisions (code),
    roles      TEXT   NOT NULL,
    email      TEXT   NULL,
    active     BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE approval_items (
    code       TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    department TEXT   NOT NULL REFERENCES departments (code),
    excluded   BIGINT NOT NULL,
    spec       TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (code, version)
);
CREATE TABLE supervision_items (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    department TEXT NOT NULL REFERENCES departments (code),
    division   TEXT NOT NULL REFERENCES divisions (code)
);
CREATE TABLE applicants (
    uscc                 TEXT   PRIMARY KEY,
    name                 TEXT   NOT NULL,
    legal_representative TEXT   NOT NULL,
    email                TEXT   NULL,
    mobile               TEXT   NULL,
    credit_tier          TEXT   NOT NULL,
    dishonest            BIGINT NOT NULL,
    imported_tier        TEXT   NOT NULL,
    imported_dishonest   BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE TABLE cases (
    instance_id        TEXT   PRIMARY KEY REFERENCES workflow_instances (id),
    item_code          TEXT   NOT NULL,
    item_version       BIGINT NOT NULL,
    applicant_uscc     TEXT   NOT NULL REFERENCES applicants (uscc),
    mode               TEXT   NOT NULL,
    department         TEXT   NOT NULL REFERENCES departments (code),
    opened_by          TEXT   NOT NULL,
    credit_tier        TEXT   NOT NULL,
    dishonest          BIGINT NOT NULL,
    commitment_version BIGINT NULL,
    commitment_text    TEXT   NULL,
    signed_by          TEXT   NULL,
    signed_at          BIGINT NULL,
    licence_number     TEXT   NULL UNIQUE,
    created_at         BIGINT NOT NULL,
    FOREIGN KEY (item_code, item_version) REFERENCES approval_items (code, version)
);
CREATE INDEX ix_cases_department ON cases (department, created_at);
CREATE INDEX ix_cases_applicant ON cases (applicant_uscc);
CREATE TABLE case_materials (
    instance_id  TEXT   NOT NULL REFERENCES cases (instance_id),
    code         TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    due_at       BIGINT NULL,
    file_ref     TEXT   NULL,
    received_by  TEXT   NULL,
    received_at  BIGINT NULL,
    verification TEXT   NULL,
    PRIMARY KEY (instance_id, code)
);
CREATE TABLE returns (
    id             TEXT   PRIMARY KEY,
    item_code      TEXT   NOT NULL,
    applicant_uscc TEXT   NULL,
    officer        TEXT   NOT NULL,
    department     TEXT   NOT NULL REFERENCES departments (code),
    category       TEXT   NOT NULL,
    reason         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX ix_returns_officer ON returns (officer, created_at);
CREATE TABLE licence_sequences (
    item_code TEXT   NOT NULL,
    year      BIGINT NOT NULL,
    next      BIGINT NOT NULL,
    PRIMARY KEY (item_code, year)
);
CREATE TABLE electronic_licences (
    holder_uscc TEXT NOT NULL,
    kind        TEXT NOT NULL,
    number      TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    revoked     BIGINT NOT NULL,
    PRIMARY KEY (kind, number)
);
CREATE INDEX ix_elicences_holder ON electronic_licences (holder_uscc, kind);
CREATE TABLE credit_records (
    id             TEXT   PRIMARY KEY,
    applicant_uscc TEXT   NOT NULL,
    kind           TEXT   NOT NULL,
    instance_id    TEXT   NULL REFERENCES workflow_instances (id),
    event_seq      BIGINT NULL,
    reason         TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    repaired_at    BIGINT NULL,
    repaired_by    TEXT   NULL,
    repair_reason  TEXT   NULL
);
CREATE INDEX ix_credit_records_applicant ON credit_records (applicant_uscc, created_at);
CREATE TABLE inspection_draws (
    id         TEXT   PRIMARY KEY,
    seed       BIGINT NOT NULL,
    drawn_by   TEXT   NOT NULL,
    drawn_at   BIGINT NOT NULL,
    ratios     TEXT   NOT NULL,
    pool       TEXT   NOT NULL,
    picks      TEXT   NOT NULL
);
CREATE TABLE provisional_deadlines (
    instance_id  TEXT   NOT NULL REFERENCES workflow_instances (id),
    name         TEXT   NOT NULL,
    from_date    TEXT   NOT NULL,
    working_days BIGINT NOT NULL,
    time_of_day  TEXT   NOT NULL,
    PRIMARY KEY (instance_id, name)
)
"#;

const DOWN: &str = r#"
DROP TABLE provisional_deadlines;
DROP TABLE inspection_draws;
DROP TABLE credit_records;
DROP TABLE electronic_licences;
DROP TABLE licence_sequences;
DROP TABLE returns;
DROP TABLE case_materials;
DROP TABLE cases;
DROP TABLE applicants;
DROP TABLE supervision_items;
DROP TABLE approval_items;
DROP TABLE staff;
DROP TABLE divisions;
DROP TABLE departments;
DROP TABLE regions
"#;

sql_migration!(
    UP,
    DOWN
);
