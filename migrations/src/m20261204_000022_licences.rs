use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The licence numbers, each sealed with the audit key and written as the last statement of the
// transaction that issues it (issue #22): the gap-free sequence row is held from there to the
// commit, not through the whole approval. The approval's event no longer carries the number;
// `audit verify` checks a case's number against this row (and, for licences issued before it,
// against the event that recorded the number).
sql_migration!(
    "CREATE TABLE licences (
        instance_id TEXT   PRIMARY KEY REFERENCES workflow_instances (id),
        number      TEXT   NOT NULL UNIQUE,
        event_seq   BIGINT NOT NULL,
        issued_at   BIGINT NOT NULL,
        mac         TEXT
    )",
    "DROP TABLE licences"
);
