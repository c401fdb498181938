use sea_orm_migration::prelude::*;

use crate::sql_migration;

// A supervision limit missed (3 working days to look at a task, 5 to feed back), recorded
// against the division that held the task, for supervisors' dashboards.
sql_migration!(
    "CREATE TABLE sla_breaches (
        id          TEXT   PRIMARY KEY,
        instance_id TEXT   NOT NULL REFERENCES workflow_instances (id),
        event_seq   BIGINT NOT NULL,
        region      TEXT   NULL,
        department  TEXT   NULL,
        division    TEXT   NULL,
        limit_kind  TEXT   NOT NULL,
        breached_at BIGINT NOT NULL,
        UNIQUE (instance_id, event_seq)
    );
    CREATE INDEX ix_sla_breaches_division ON sla_breaches (division, breached_at)",
    "DROP TABLE sla_breaches"
);
