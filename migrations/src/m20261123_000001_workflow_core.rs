use sea_orm_migration::prelude::*;

use crate::sql_migration;

const UP: &str = r#"
CREATE TABLE workflow_definitions (
    name        TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    digest      TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    deployed_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE workflow_instances (
    id                 TEXT   PRIMARY KEY,
    definition_name    TEXT   NOT NULL,
    definition_version BIGINT NOT NULL,
    state              TEXT   NOT NULL,
    version            BIGINT NOT NULL,
    context            TEXT   NOT NULL,
    deadlines          TEXT   NOT NULL,
    parent_id          TEXT   NULL REFERENCES workflow_instances (id),
    last_event_hash    TEXT   NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    FOREIGN KEY (definition_name, definition_version)
        REFERENCES workflow_definitions (name, version)
);
CREATE INDEX ix_instances_definition_state ON workflow_instances (definition_name, state);
CREATE INDEX ix_instances_parent ON workflow_instances (parent_id);

CREATE TABLE workflow_events (
    instance_id TEXT   NOT NULL REFERENCES workflow_instances (id),
    seq         BIGINT NOT NULL,
    event       TEXT   NOT NULL,
    from_state  TEXT   NULL,
    to_state    TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    prev_hash   TEXT   NOT NULL,
    hash        TEXT   NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE INDEX ix_events_occurred ON workflow_events (occurred_at);

CREATE TABLE workflow_timers (
    id            TEXT   PRIMARY KEY,
    instance_id   TEXT   NOT NULL REFERENCES workflow_instances (id),
    state         TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    event         TEXT   NOT NULL,
    due_at        BIGINT NOT NULL,
    status        TEXT   NOT NULL,
    armed_seq     BIGINT NOT NULL,
    claimed_by    TEXT   NULL,
    claimed_until BIGINT NULL,
    settled_at    BIGINT NULL
);
CREATE INDEX ix_timers_pending_due ON workflow_timers (due_at) WHERE status = 'pending';
CREATE INDEX ix_timers_instance ON workflow_timers (instance_id, status);

CREATE TABLE outbox (
    id              TEXT   PRIMARY KEY,
    instance_id     TEXT   NOT NULL REFERENCES workflow_instances (id),
    event_seq       BIGINT NOT NULL,
    channel         TEXT   NOT NULL,
    recipient       TEXT   NOT NULL,
    topic           TEXT   NOT NULL,
    payload         TEXT   NOT NULL,
    idempotency_key TEXT   NOT NULL UNIQUE,
    status          TEXT   NOT NULL,
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT   NULL,
    claimed_by      TEXT   NULL,
    claimed_until   BIGINT NULL,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT NULL
);
CREATE INDEX ix_outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX ix_outbox_instance ON outbox (instance_id)
"#;

const DOWN: &str = r#"
DROP TABLE outbox;
DROP TABLE workflow_timers;
DROP TABLE workflow_events;
DROP TABLE workflow_instances;
DROP TABLE workflow_definitions
"#;

sql_migration!(
    UP,
    DOWN
);
