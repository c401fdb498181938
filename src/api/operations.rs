//! Operating the installation through the API: the outbox and its dead letters, and the
//! training clock. Operators only.

use async_graphql::{
    connection::{Connection, EmptyFields, OpaqueCursor},
    Context, Enum, InputObject, Object, SimpleObject, ID,
};
use chrono::{DateTime, Utc};

use super::access::{error, ErrorCode, OPERATORS};
use super::Services;
use crate::store::{entities, instances::from_ms, outbox};

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Delivered,
    /// Failed every attempt, or permanently: waits for an operator.
    Dead,
    /// Not sent on purpose: a reminder whose deadline passed before its turn came.
    Skipped,
}

impl OutboxStatus {
    fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => outbox::status::PENDING,
            OutboxStatus::Delivered => outbox::status::DELIVERED,
            OutboxStatus::Dead => outbox::status::DEAD,
            OutboxStatus::Skipped => outbox::status::SKIPPED,
        }
    }
}

/// A message, webhook or signal written by a transition, on its way out.
pub struct OutboxMessage(entities::outbox::Model);

#[Object]
impl OutboxMessage {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn instance_id(&self) -> ID {
        ID(self.0.instance_id.clone())
    }
    /// `email`, `sms`, `webhook` or `signal`.
    async fn channel(&self) -> &str {
        &self.0.channel
    }
    async fn recipient(&self) -> &str {
        &self.0.recipient
    }
    async fn topic(&self) -> &str {
        &self.0.topic
    }
    /// Stable across retries; the email's Message-ID and the webhook's Idempotency-Key.
    async fn idempotency_key(&self) -> &str {
        &self.0.idempotency_key
    }
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// Attempts in the current round (an operator's requeue starts a new one).
    async fn attempts(&self) -> i64 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn next_attempt_at(&self) -> DateTime<Utc> {
        from_ms(self.0.next_attempt_at)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        from_ms(self.0.created_at)
    }
    async fn delivered_at(&self) -> Option<DateTime<Utc>> {
        self.0.delivered_at.map(from_ms)
    }
    /// Every attempt, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<DeliveryAttempt>> {
        let services = ctx.data::<Services>()?;
        let attempts = outbox::attempts(&services.engine.db, &self.0.id).await.map_err(|e| e.internal())?;
        Ok(attempts.into_iter().map(DeliveryAttempt::from).collect())
    }
}

#[derive(SimpleObject)]
pub struct DeliveryAttempt {
    pub attempt: i64,
    pub at: DateTime<Utc>,
    /// `delivered`, `failed`, `dead` or `requeued`.
    pub outcome: String,
    pub detail: Option<String>,
    pub worker: String,
}

impl From<outbox::Attempt> for DeliveryAttempt {
    fn from(a: outbox::Attempt) -> Self {
        Self { attempt: a.attempt, at: from_ms(a.at), outcome: a.outcome, detail: a.detail, worker: a.worker }
    }
}

use super::access::ConnectionTotal;

#[derive(InputObject, Default)]
pub struct OutboxFilter {
    pub status: Option<OutboxStatus>,
    pub instance_id: Option<ID>,
}

#[derive(SimpleObject)]
pub struct ServerClock {
    pub now: DateTime<Utc>,
    /// True when an operator may move it (`PLEDGEFLOW_CLOCK=manual`).
    pub manual: bool,
}

/// Outbox rows of the caller's region: those of its instances (a row of no instance in any
/// region — none are written today — is no region's and listed to none).
fn in_region(region: &super::policy::Scoped<super::policy::Region>) -> sea_orm::Condition {
    use sea_orm::sea_query::Query;
    use sea_orm::ColumnTrait;
    let ids = Query::select()
        .column(entities::instance::Column::Id)
        .from(entities::instance::Entity)
        .and_where(entities::instance::Column::Region.eq(region.code.clone()))
        .to_owned();
    sea_orm::Condition::all().add(entities::outbox::Column::InstanceId.in_subquery(ids))
}

#[derive(Default)]
pub struct OperationsQuery;

#[Object]
impl OperationsQuery {
    /// Outbox rows, newest first; `filter: {status: DEAD}` lists the dead letters.
    #[graphql(guard = "OPERATORS")]
    async fn outbox(
        &self,
        ctx: &Context<'_>,
        filter: Option<OutboxFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<u64>, OutboxMessage, ConnectionTotal, EmptyFields>> {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
        let services = ctx.data::<Services>()?;
        let db = &services.engine.db;
        let region = super::policy::region(db, super::access::claims(ctx)?, super::policy::Act::Operate).await?;
        let filter = filter.unwrap_or_default();
        let page = super::access::Page::from_args(first, after)?;
        let mut q = entities::outbox::Entity::find().filter(in_region(&region));
        if let Some(s) = filter.status.map(OutboxStatus::as_str) {
            q = q.filter(entities::outbox::Column::Status.eq(s));
        }
        if let Some(i) = &filter.instance_id {
            q = q.filter(entities::outbox::Column::InstanceId.eq(i.as_str()));
        }
        let total = q.clone().count(db).await.map_err(|e| e.internal())?;
        let rows = q
            .order_by_desc(entities::outbox::Column::CreatedAt)
            .order_by_desc(entities::outbox::Column::Id)
            .offset(page.offset)
            .limit(page.first)
            .all(db)
            .await
            .map_err(|e| e.internal())?;
        Ok(page.connection(rows.into_iter().map(OutboxMessage).collect(), total))
    }

    /// The time the server acts on, and whether it is the training clock: what anyone signed in
    /// reads a deadline against (on a training server it is far from the wall clock).
    #[graphql(guard = "super::access::ANYONE")]
    async fn server_clock(&self, ctx: &Context<'_>) -> async_graphql::Result<ServerClock> {
        let services = ctx.data::<Services>()?;
        Ok(ServerClock { now: services.engine.now(), manual: services.manual_clock.is_some() })
    }
}

use async_graphql::ErrorExtensions;

#[derive(InputObject)]
pub struct RequeueOutboxMessageInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct RequeueOutboxMessagePayload {
    pub message: OutboxMessage,
}

/// Move the training clock: to an instant, or forward by some seconds. Never backwards.
#[derive(InputObject)]
pub struct AdvanceClockInput {
    pub to: Option<DateTime<Utc>>,
    pub by_seconds: Option<i64>,
}

#[derive(SimpleObject)]
pub struct AdvanceClockPayload {
    pub now: DateTime<Utc>,
    pub timers_fired: u64,
    pub messages_delivered: u64,
}

#[derive(Default)]
pub struct OperationsMutation;

#[Object]
impl OperationsMutation {
    /// Puts a dead letter back in the queue for a fresh round of attempts.
    #[graphql(guard = "OPERATORS")]
    async fn requeue_outbox_message(&self, ctx: &Context<'_>, input: RequeueOutboxMessageInput) -> async_graphql::Result<RequeueOutboxMessagePayload> {
        let services = ctx.data::<Services>()?;
        let caller = super::access::claims(ctx)?;
        let db = &services.engine.db;
        let find = || async {
            use sea_orm::EntityTrait;
            entities::outbox::Entity::find_by_id(input.id.to_string()).one(db).await.map_err(|e| e.internal())
        };
        let region = super::policy::region(db, caller, super::policy::Act::Operate).await?;
        let in_scope = {
            use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
            entities::outbox::Entity::find()
                .filter(entities::outbox::Column::Id.eq(input.id.as_str()))
                .filter(in_region(&region))
                .count(db)
                .await
                .map_err(|e| e.internal())?
                > 0
        };
        let Some(row) = find().await?.filter(|_| in_scope) else {
            return Err(super::policy::out_of_scope(format_args!("outbox message {}", input.id.as_str())));
        };
        if row.status != outbox::status::DEAD {
            return Err(error("CONFLICT", format!("the message is {}, not dead", row.status)));
        }
        if !outbox::requeue(db, &row.id, &caller.sub, services.engine.now()).await.map_err(|e| e.internal())? {
            return Err(error("CONFLICT", "the message was requeued meanwhile"));
        }
        services.wake.notify_one();
        let row = find().await?.ok_or_else(|| error("NOT_FOUND", "the message vanished"))?;
        Ok(RequeueOutboxMessagePayload { message: OutboxMessage(row) })
    }

    /// Moves the training clock and runs the due sweeps at once. Refused unless the server
    /// was started with `PLEDGEFLOW_CLOCK=manual`.
    #[graphql(guard = "OPERATORS")]
    async fn advance_clock(&self, ctx: &Context<'_>, input: AdvanceClockInput) -> async_graphql::Result<AdvanceClockPayload> {
        let services = ctx.data::<Services>()?;
        let Some(clock) = &services.manual_clock else {
            return Err(error("FORBIDDEN", "the server's clock is the system clock (set PLEDGEFLOW_CLOCK=manual to move it)"));
        };
        let now = services.engine.now();
        let target = match (input.to, input.by_seconds) {
            (Some(t), None) => t,
            (None, Some(s)) if s >= 0 => now + chrono::Duration::seconds(s),
            _ => return Err(error("BAD_USER_INPUT", "give either `to` or a non-negative `bySeconds`").extend_with(|_, e| e.set("field", "input"))),
        };
        if target < now {
            return Err(error("BAD_USER_INPUT", format!("the clock never moves back (now {now})")).extend_with(|_, e| e.set("field", "to")));
        }
        crate::store::training_clock::keep(&services.engine.db, target).await.map_err(|e| e.internal())?;
        clock.set(target);
        tracing::warn!(%target, "training clock moved by an operator");
        let fired = services.engine.sweep(&services.worker).await.map_err(|e| e.internal())?;
        let delivered = services.outbox.deliver_due(&services.worker).await.map_err(|e| e.internal())?;
        Ok(AdvanceClockPayload { now: target, timers_fired: fired.fired as u64, messages_delivered: delivered.delivered as u64 })
    }
}
