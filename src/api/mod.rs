//! The HTTP surface: health probes and the GraphQL endpoint (with GraphiQL).

pub mod access;
pub mod operations;
pub mod types;

use std::sync::Arc;

use async_graphql::{http::GraphiQLSource, EmptySubscription, MergedObject, Object, Schema, ID};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    extract::State,
    http::StatusCode,
    response::{Html, IntoResponse},
    routing::get,
    Json, Router,
};

use crate::auth::Keys;
use crate::clock::ManualClock;
use crate::delivery::Outbox;
use crate::runtime::Engine;
use types::{WorkflowDefinition, WorkflowInstance};

pub type PledgeflowSchema = Schema<Query, Mutation, EmptySubscription>;

/// What resolvers reach through the context.
#[derive(Clone)]
pub struct Services {
    pub engine: Engine,
    pub outbox: Outbox,
    /// Present only when the server runs with `PLEDGEFLOW_CLOCK=manual`.
    pub manual_clock: Option<ManualClock>,
    /// Wakes the outbox worker when an operator requeues a message.
    pub wake: Arc<tokio::sync::Notify>,
    pub worker: String,
    pub keys: Keys,
}

#[derive(MergedObject, Default)]
pub struct Query(WorkflowQuery, operations::OperationsQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(operations::OperationsMutation);

#[derive(Default)]
pub struct WorkflowQuery;

#[Object]
impl WorkflowQuery {
    /// Every deployed definition, newest version of each name.
    async fn workflow_definitions(&self, ctx: &async_graphql::Context<'_>) -> async_graphql::Result<Vec<WorkflowDefinition>> {
        let engine = ctx.data::<Engine>()?;
        Ok(engine.workflows.set.latest_all().iter().map(|d| d.as_ref().into()).collect())
    }

    /// One definition; the newest version unless `version` is given.
    async fn workflow_definition(
        &self,
        ctx: &async_graphql::Context<'_>,
        name: String,
        version: Option<i64>,
    ) -> async_graphql::Result<Option<WorkflowDefinition>> {
        let set = &ctx.data::<Engine>()?.workflows.set;
        let def = match version {
            Some(v) => set.get(&name, v),
            None => set.latest(&name),
        };
        Ok(def.map(|d| d.as_ref().into()))
    }

    async fn workflow_instance(&self, ctx: &async_graphql::Context<'_>, id: ID) -> async_graphql::Result<Option<WorkflowInstance>> {
        let engine = ctx.data::<Engine>()?;
        Ok(engine.instance(&id).await?.map(WorkflowInstance))
    }
}

pub fn schema(services: Option<Services>) -> PledgeflowSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription);
    if let Some(services) = services {
        builder = builder.data(services.engine.clone()).data(services);
    }
    builder.finish()
}

/// The schema as SDL: what `export-schema` writes to `graphql/schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

#[derive(Clone)]
struct AppState {
    engine: Engine,
    keys: Keys,
    schema: PledgeflowSchema,
    graphiql: bool,
}

pub fn router(services: Services, graphiql: bool) -> Router {
    let engine = services.engine.clone();
    let keys = services.keys.clone();
    let schema = schema(Some(services));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/graphql", get(graphiql_page).post(graphql))
        .with_state(AppState { engine, keys, schema, graphiql })
}

async fn graphql(State(state): State<AppState>, headers: axum::http::HeaderMap, req: GraphQLRequest) -> GraphQLResponse {
    let header = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("(not text)"));
    let caller = access::Caller(state.keys.from_header(header));
    state.schema.execute(req.into_inner().data(caller)).await.into()
}

async fn graphiql_page(State(state): State<AppState>) -> impl IntoResponse {
    if state.graphiql {
        Html(GraphiQLSource::build().endpoint("/graphql").finish()).into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = crate::store::ping(&state.engine.db).await;
    let definitions = state.engine.workflows.set.all().count();
    let ready = database && definitions > 0;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "database": database, "definitions": definitions })))
}
