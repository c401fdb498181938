use sea_orm_migration::prelude::*;

use crate::sql_migration;

// The written notices a case's applicant was sent (受理通知书, 补正材料通知书, 准予许可决定书,
// 告知书, …), kept with the case as they were worded when sent (issue #19): a template edited
// later does not change what the enterprise received. One row per outbox message.
sql_migration!(
    "CREATE TABLE case_notices (
        outbox_id   TEXT   PRIMARY KEY,
        instance_id TEXT   NOT NULL,
        topic       TEXT   NOT NULL,
        subject     TEXT   NOT NULL,
        body        TEXT   NOT NULL,
        sent_at     BIGINT NOT NULL
    );
    CREATE INDEX ix_case_notices_instance ON case_notices (instance_id, sent_at)",
    "DROP INDEX ix_case_notices_instance;
    DROP TABLE case_notices"
);
