use sea_orm_migration::prelude::*;

// Room on each page of workflow_instances for its rows' next versions (PostgreSQL; SQLite
// rewrites rows in place). Many transitions change no indexed column — a reminder writes
// version, hash and updated_at — so PostgreSQL can keep the new version on the same page and
// leave the table's thirteen indexes alone (a heap-only update), but only where the page has
// room. Cases opened together fall due together (a morning's reminders touch every row of a
// page): on full pages 2,000 reminders made 6 heap-only updates; with a page 70 % full, 44 %;
// half full, all of them (BENCHMARKS.md, issue #22). The table is no larger for it after one
// round of updates — a version that does not fit goes to another page anyway (26 MB at half,
// 29 MB at 70 %, 50,000 instances). Pages written before this migration get the room as they
// are rewritten.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => crate::run_sql(manager, "ALTER TABLE workflow_instances SET (fillfactor = 50)").await,
            _ => Ok(()),
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => crate::run_sql(manager, "ALTER TABLE workflow_instances RESET (fillfactor)").await,
            _ => Ok(()),
        }
    }
}
