//! Schema migrations for pledgeflow, run on SQLite and PostgreSQL alike.
//!
//! Plain SQL that both backends accept: text keys (UUIDv7 from the application), BIGINT
//! instants in UTC milliseconds (cheap to index and compare on both), enums as text, every
//! foreign key and unique constraint declared in CREATE TABLE (SQLite cannot add them later).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_workflow_core;
mod m20261123_000002_timer_errors;
mod m20261123_000003_delivery;
mod m20261123_000004_provisional_timers;
mod m20261123_000005_scope_and_idempotency;
mod m20261123_000006_window;
mod m20261123_000007_sla_breaches;
mod m20261123_000008_return_rule;
mod m20261123_000009_event_actor;
mod m20261201_000010_statistics_rollup;
mod m20261201_000011_bundles;
mod m20261202_000012_inbox_indexes;
mod m20261202_000013_authorization;
mod m20261203_000014_keyed_audit;
mod m20261203_000015_credit_terms;
mod m20261203_000016_item_reexamination;
mod m20261203_000017_name_search;
mod m20261203_000018_enterprise_file;
mod m20261203_000019_case_notices;
mod m20261204_000020_calendar_files;
mod m20261204_000021_rollup_deltas;
mod m20261204_000022_licences;
mod m20261204_000023_instance_fillfactor;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_workflow_core::Migration),
            Box::new(m20261123_000002_timer_errors::Migration),
            Box::new(m20261123_000003_delivery::Migration),
            Box::new(m20261123_000004_provisional_timers::Migration),
            Box::new(m20261123_000005_scope_and_idempotency::Migration),
            Box::new(m20261123_000006_window::Migration),
            Box::new(m20261123_000007_sla_breaches::Migration),
            Box::new(m20261123_000008_return_rule::Migration),
            Box::new(m20261123_000009_event_actor::Migration),
            Box::new(m20261201_000010_statistics_rollup::Migration),
            Box::new(m20261201_000011_bundles::Migration),
            Box::new(m20261202_000012_inbox_indexes::Migration),
            Box::new(m20261202_000013_authorization::Migration),
            Box::new(m20261203_000014_keyed_audit::Migration),
            Box::new(m20261203_000015_credit_terms::Migration),
            Box::new(m20261203_000016_item_reexamination::Migration),
            Box::new(m20261203_000017_name_search::Migration),
            Box::new(m20261203_000018_enterprise_file::Migration),
            Box::new(m20261203_000019_case_notices::Migration),
            Box::new(m20261204_000020_calendar_files::Migration),
            Box::new(m20261204_000021_rollup_deltas::Migration),
            Box::new(m20261204_000022_licences::Migration),
            Box::new(m20261204_000023_instance_fillfactor::Migration),
        ]
    }
}

/// A migration of plain SQL: `sql_migration!(UP, DOWN)` in its own module declares the
/// `Migration` (named after the module's file, as sea-orm-migration expects) running them.
#[macro_export]
macro_rules! sql_migration {
    ($up:expr, $down:expr) => {
        #[derive(DeriveMigrationName)]
        pub struct Migration;

        #[async_trait::async_trait]
        impl MigrationTrait for Migration {
            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $crate::run_sql(manager, $up).await
            }

            async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                $crate::run_sql(manager, $down).await
            }
        }
    };
}

/// Runs each `;`-separated statement of `sql` on its own, since SQLite's driver does not
/// promise multi-statement execution.
pub async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_keep_the_names_databases_know_them_by() {
        let names: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_string()).collect();
        assert_eq!(
            names,
            [
                "m20261123_000001_workflow_core",
                "m20261123_000002_timer_errors",
                "m20261123_000003_delivery",
                "m20261123_000004_provisional_timers",
                "m20261123_000005_scope_and_idempotency",
                "m20261123_000006_window",
                "m20261123_000007_sla_breaches",
                "m20261123_000008_return_rule",
                "m20261123_000009_event_actor",
                "m20261201_000010_statistics_rollup",
                "m20261201_000011_bundles",
                "m20261202_000012_inbox_indexes",
                "m20261202_000013_authorization",
                "m20261203_000014_keyed_audit",
                "m20261203_000015_credit_terms",
                "m20261203_000016_item_reexamination",
                "m20261203_000017_name_search",
                "m20261203_000018_enterprise_file",
                "m20261203_000019_case_notices",
                "m20261204_000020_calendar_files",
                "m20261204_000021_rollup_deltas",
                "m20261204_000022_licences",
                "m20261204_000023_instance_fillfactor",
            ]
        );
    }
}
