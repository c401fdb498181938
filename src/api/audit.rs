//! The audit trail through the API: every event in the caller's scope, by actor, instance and
//! time, newest first. (Per case it is also each instance's `history`; `pledgeflow audit
//! verify` walks every chain.)

use async_graphql::{connection::Connection, connection::EmptyFields, connection::OpaqueCursor, Context, InputObject, Object, ID};
use chrono::{DateTime, Utc};
use sea_orm::{sea_query::Query, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::access::{self, ErrorCode};
use super::access::ConnectionTotal;
use super::types::AuditEvent;
use crate::runtime::Engine;
use crate::store::entities::{event, instance};

#[derive(InputObject, Default)]
pub struct AuditFilter {
    /// Who acted: a staff id, an applicant's subject, or `system`.
    pub actor: Option<String>,
    pub instance_id: Option<ID>,
    /// The event's name (e.g. `revoke`, `deadline_extended`).
    pub event: Option<String>,
    /// From this instant (inclusive).
    pub from: Option<DateTime<Utc>>,
    /// Up to this instant (exclusive).
    pub to: Option<DateTime<Utc>>,
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Audit events of the instances in the caller's scope, newest first.
    #[graphql(guard = "access::ANYONE")]
    async fn audit_trail(
        &self,
        ctx: &Context<'_>,
        filter: Option<AuditFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<OpaqueCursor<u64>, AuditEvent, ConnectionTotal, EmptyFields>> {
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let page = access::Page::from_args(first, after)?;
        let f = filter.unwrap_or_default();
        let visible = Query::select().column(instance::Column::Id).from(instance::Entity).cond_where(access::visible_instances(claims)).to_owned();
        let mut query = event::Entity::find().filter(event::Column::InstanceId.in_subquery(visible));
        if let Some(actor) = f.actor {
            query = query.filter(event::Column::ActorSubject.eq(actor));
        }
        if let Some(id) = f.instance_id {
            query = query.filter(event::Column::InstanceId.eq(id.to_string()));
        }
        if let Some(e) = f.event {
            query = query.filter(event::Column::Event.eq(e));
        }
        if let Some(from) = f.from {
            query = query.filter(event::Column::OccurredAt.gte(from.timestamp_millis()));
        }
        if let Some(to) = f.to {
            query = query.filter(event::Column::OccurredAt.lt(to.timestamp_millis()));
        }
        let total = query.clone().count(&engine.db).await.map_err(|e| e.internal())?;
        let rows = query
            .order_by_desc(event::Column::OccurredAt)
            .order_by_desc(event::Column::InstanceId)
            .order_by_desc(event::Column::Seq)
            .offset(page.offset)
            .limit(page.first)
            .all(&engine.db)
            .await
            .map_err(|e| e.internal())?;
        Ok(page.connection(rows.into_iter().map(AuditEvent::from).collect(), total))
    }
}
