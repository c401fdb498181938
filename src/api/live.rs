//! Live updates over graphql-transport-ws (`/graphql/ws`): the events of one case, and new
//! supervision tasks for the caller's division. Streams poll the database (cheap, indexed),
//! so an event committed by any process reaches every subscriber; scope is checked like a
//! query's, and the token comes in the connection_init payload (`{"Authorization": "Bearer …"}`).

use std::time::Duration;

use async_graphql::{Context, Subscription, ID};
use futures::{stream, Stream, StreamExt};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use super::access::{self, error, ErrorCode, Roles};
use super::types::{AuditEvent, WorkflowInstance};
use crate::runtime::Engine;
use crate::store::entities::{event, instance};

/// How often a live stream looks for news.
#[derive(Clone, Copy, Debug)]
pub struct PollEvery(pub Duration);

#[derive(Default)]
pub struct SubscriptionRoot;

fn poll_every(ctx: &Context<'_>) -> Duration {
    ctx.data_opt::<PollEvery>().map_or(Duration::from_secs(1), |p| p.0)
}

#[Subscription]
impl SubscriptionRoot {
    /// Each new audit event of one case or task in the caller's scope, as it is committed.
    #[graphql(guard = "access::ANYONE")]
    async fn case_events(&self, ctx: &Context<'_>, instance_id: ID) -> async_graphql::Result<impl Stream<Item = AuditEvent>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let visible = instance::Entity::find_by_id(instance_id.to_string())
            .filter(access::visible_instances(claims))
            .one(&engine.db)
            .await
            .map_err(|e| e.internal())?
            .ok_or_else(|| error("NOT_FOUND", format!("no instance {}", instance_id.as_str())))?;
        let db = engine.db.clone();
        let every = poll_every(ctx);
        let id = visible.id;
        let start = visible.version;
        Ok(polling(every, start, move |after| {
            let (db, id) = (db.clone(), id.clone());
            async move {
                let rows = event::Entity::find()
                    .filter(event::Column::InstanceId.eq(id))
                    .filter(event::Column::Seq.gt(after))
                    .order_by_asc(event::Column::Seq)
                    .all(&db)
                    .await
                    .unwrap_or_default();
                let last = rows.last().map_or(after, |r| r.seq);
                (rows.into_iter().map(AuditEvent::from).collect(), last)
            }
        }))
    }

    /// Supervision tasks created for the caller's division from now on.
    #[graphql(guard = "Roles(&[\"division_admin\", \"inspector\"])")]
    async fn new_tasks(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = WorkflowInstance>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let division = claims
            .division
            .clone()
            .ok_or_else(|| error("FORBIDDEN", "the token names no division"))?;
        let db: DatabaseConnection = engine.db.clone();
        let every = poll_every(ctx);
        // Instance ids are UUIDv7: later creations sort after earlier ones.
        let since = uuid::Uuid::now_v7().to_string();
        Ok(polling(every, since, move |after: String| {
            let (db, division) = (db.clone(), division.clone());
            async move {
                let rows = instance::Entity::find()
                    .filter(
                        Condition::all()
                            .add(instance::Column::DefinitionName.eq("supervision-task"))
                            .add(instance::Column::Division.eq(division))
                            .add(instance::Column::Id.gt(after.clone())),
                    )
                    .order_by_asc(instance::Column::Id)
                    .all(&db)
                    .await
                    .unwrap_or_default();
                let last = rows.last().map_or(after, |r| r.id.clone());
                let items = rows.into_iter().filter_map(|m| m.try_into().ok().map(WorkflowInstance)).collect();
                (items, last)
            }
        }))
    }
}

/// A stream that asks `fetch(cursor)` every `every` and yields what it returns, moving the
/// cursor on.
fn polling<C, T, F, Fut>(every: Duration, cursor: C, fetch: F) -> impl Stream<Item = T>
where
    C: Clone + Send + 'static,
    T: Send + 'static,
    F: Fn(C) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (Vec<T>, C)> + Send,
{
    stream::unfold((cursor, fetch), move |(cursor, fetch)| async move {
        let mut wait = every;
        loop {
            tokio::time::sleep(wait).await;
            // A look that panics is logged, counted and tried again later, not the end of the
            // subscriber's stream (nor of its connection).
            use futures::FutureExt;
            match std::panic::AssertUnwindSafe(fetch(cursor.clone())).catch_unwind().await {
                Ok((items, next)) => {
                    wait = every;
                    if !items.is_empty() {
                        return Some((stream::iter(items), (next, fetch)));
                    }
                }
                Err(panic) => {
                    metrics::counter!(crate::telemetry::LOOP_PANICS, "loop" => "subscription").increment(1);
                    tracing::error!(panic = %crate::health::panic_text(&*panic), "a subscription's look panicked; trying again");
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    })
    .flatten()
}
