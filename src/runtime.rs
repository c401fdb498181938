//! The running engine: the database, the deployed definitions and the clock, with one method
//! per thing callers do. Each write is one transaction.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DbErr};
use serde_json::Value;

use crate::clock::Clock;
use crate::store::{self, entities, instances, timers, FireResult, InstanceRecord, StoreError, Workflows};
use crate::workflow::Actor;

#[derive(Clone, Debug)]
pub struct Engine {
    pub db: DatabaseConnection,
    pub workflows: Arc<Workflows>,
    pub clock: Arc<dyn Clock>,
}

impl Engine {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub async fn start(
        &self,
        definition: &str,
        context: Value,
        deadlines: BTreeMap<String, DateTime<Utc>>,
        actor: &Actor,
    ) -> Result<InstanceRecord, StoreError> {
        let txn = store::begin_write(&self.db).await?;
        let rec = instances::start(&txn, &self.workflows, definition, context, deadlines, actor, None, self.now()).await?;
        txn.commit().await?;
        Ok(rec)
    }

    pub async fn fire(
        &self,
        id: &str,
        event: &str,
        actor: &Actor,
        payload: &Value,
        expected_version: Option<i64>,
    ) -> Result<FireResult, StoreError> {
        let txn = store::begin_write(&self.db).await?;
        let result = instances::fire(&txn, &self.workflows, id, event, actor, payload, expected_version, self.now()).await?;
        txn.commit().await?;
        Ok(result)
    }

    pub async fn instance(&self, id: &str) -> Result<Option<InstanceRecord>, StoreError> {
        match instances::load(&self.db, id).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn history(&self, id: &str) -> Result<Vec<entities::event::Model>, DbErr> {
        instances::history(&self.db, id).await
    }

    pub async fn timers(&self, id: &str) -> Result<Vec<entities::timer::Model>, DbErr> {
        instances::timers(&self.db, id).await
    }

    /// Fires every timer due now, as `worker`.
    pub async fn sweep(&self, worker: &str) -> Result<timers::SweepReport, StoreError> {
        self.sweep_shaped(worker, timers::Shape::default()).await
    }

    /// `sweep` with its work divided otherwise (the timer bench compares shapes).
    pub async fn sweep_shaped(&self, worker: &str, shape: timers::Shape) -> Result<timers::SweepReport, StoreError> {
        self.put_imported_calendar_in_force().await;
        let report = timers::sweep(&self.db, &self.workflows, worker, self.now(), 200, shape).await;
        // The statistics' changes since the last sweep, folded into their rows.
        if let Err(e) = crate::store::rollup::fold(&self.db).await {
            tracing::warn!(error = %e, "statistics changes not folded; the next sweep folds them");
        }
        report
    }

    /// A calendar year imported since the last sweep is put in force, and the deadlines counted
    /// provisionally over it recounted, before any timer fires on the old count.
    async fn put_imported_calendar_in_force(&self) {
        match crate::store::calendar_files::refresh(&self.db, &self.workflows.env.calendar).await {
            Ok(true) => match crate::store::provisional::confirm(&self.db, &self.workflows, self.now()).await {
                Ok(r) => tracing::info!(extended = r.extended, kept = r.kept, still_provisional = r.still_provisional, "provisional deadlines recounted on the imported calendar"),
                Err(e) => tracing::error!(error = %e, "provisional deadlines could not be recounted; retried at the next start"),
            },
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "the imported calendar could not be read; the calendar in force stays"),
        }
    }
}
