use sea_orm_migration::prelude::*;

// Who acted, as its own indexed column, so the audit trail can be read per actor; filled in
// for the events already written (the JSON functions differ between the backends).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backfill = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => "UPDATE workflow_events SET actor_subject = (actor::json ->> 'subject')",
            _ => "UPDATE workflow_events SET actor_subject = json_extract(actor, '$.subject')",
        };
        crate::run_sql(
            manager,
            &format!(
                "ALTER TABLE workflow_events ADD COLUMN actor_subject TEXT NULL; {backfill}; \
                 CREATE INDEX ix_events_actor ON workflow_events (actor_subject, occurred_at)"
            ),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP INDEX ix_events_actor; ALTER TABLE workflow_events DROP COLUMN actor_subject").await
    }
}
