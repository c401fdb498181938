use sea_orm_migration::prelude::*;

use crate::run_sql;

/// A timer whose event the engine refused is kept, marked failed, with the reason: never
/// silently dropped.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_sql(manager, "ALTER TABLE workflow_timers ADD COLUMN last_error TEXT NULL").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run_sql(manager, "ALTER TABLE workflow_timers DROP COLUMN last_error").await
    }
}
