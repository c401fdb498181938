use sea_orm_migration::prelude::*;

use sea_orm_migration::sea_orm::TransactionTrait;

// The trust boundary (one authorization policy):
// - staff carry their own region, so a regional admin or supervisor can be registered before
//   any department exists (the bootstrap of a fresh install), and the department becomes
//   optional for them. The table is rebuilt because SQLite cannot drop a NOT NULL in place.
// - a department may be the registration authority of its region (it deregisters business
//   licences there).
// - an applicant has a home region: the region whose window or admin registered it. Rows on
//   file are given the region of their earliest case; those with no case stay NULL until a
//   window or admin of some region records them again (which then adopts them).
// - every change of an applicant's name, legal representative or contact is kept.
// - an inspection draw records the region it drew from, so listings can filter by it.
//
// One transaction, so one connection: the rebuild's DROP and RENAME must not land on different
// connections of a SQLite pool (seen under load), and a failure leaves the old table whole.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        in_one_transaction(manager, UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        in_one_transaction(manager, DOWN).await
    }
}

async fn in_one_transaction(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let txn = manager.get_connection().begin().await?;
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        txn.execute_unprepared(statement).await?;
    }
    txn.commit().await
}

const UP: &str = "CREATE TABLE staff_registry (
        id         TEXT   PRIMARY KEY,
        name       TEXT   NOT NULL,
        region     TEXT   NOT NULL REFERENCES regions (code),
        department TEXT   NULL REFERENCES departments (code),
        division   TEXT   NULL REFERENCES divisions (code),
        roles      TEXT   NOT NULL,
        email      TEXT   NULL,
        active     BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    INSERT INTO staff_registry (id, name, region, department, division, roles, email, active, created_at)
        SELECT s.id, s.name, d.region, s.department, s.division, s.roles, s.email, s.active, s.created_at
        FROM staff s JOIN departments d ON d.code = s.department;
    DROP TABLE staff;
    ALTER TABLE staff_registry RENAME TO staff;
    CREATE INDEX ix_staff_division ON staff (division);
    ALTER TABLE departments ADD COLUMN registration_authority BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE applicants ADD COLUMN home_region TEXT NULL;
    UPDATE applicants SET home_region = (
        SELECT i.region FROM cases c JOIN workflow_instances i ON i.id = c.instance_id
        WHERE c.applicant_uscc = applicants.uscc AND i.region IS NOT NULL
        ORDER BY i.created_at, i.id LIMIT 1);
    CREATE TABLE applicant_changes (
        id         TEXT   PRIMARY KEY,
        uscc       TEXT   NOT NULL REFERENCES applicants (uscc),
        field      TEXT   NOT NULL,
        old_value  TEXT   NULL,
        new_value  TEXT   NULL,
        changed_by TEXT   NOT NULL,
        changed_at BIGINT NOT NULL
    );
    CREATE INDEX ix_applicant_changes_uscc ON applicant_changes (uscc, changed_at);
    ALTER TABLE inspection_draws ADD COLUMN region TEXT NULL";

const DOWN: &str = "ALTER TABLE inspection_draws DROP COLUMN region;
    DROP TABLE applicant_changes;
    ALTER TABLE applicants DROP COLUMN home_region;
    ALTER TABLE departments DROP COLUMN registration_authority;
    DROP INDEX ix_staff_division;
    CREATE TABLE staff_old (
        id         TEXT   PRIMARY KEY,
        name       TEXT   NOT NULL,
        department TEXT   NOT NULL REFERENCES departments (code),
        division   TEXT   NULL REFERENCES divisions (code),
        roles      TEXT   NOT NULL,
        email      TEXT   NULL,
        active     BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    INSERT INTO staff_old SELECT id, name, department, division, roles, email, active, created_at FROM staff WHERE department IS NOT NULL;
    DROP TABLE staff;
    ALTER TABLE staff_old RENAME TO staff";
