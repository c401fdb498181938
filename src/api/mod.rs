//! The HTTP surface: health probes and the GraphQL endpoint (with GraphiQL).

pub mod types;

use async_graphql::{http::GraphiQLSource, EmptyMutation, EmptySubscription, Object, Schema, ID};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    extract::State,
    http::StatusCode,
    response::{Html, IntoResponse},
    routing::get,
    Json, Router,
};

use crate::runtime::Engine;
use types::{WorkflowDefinition, WorkflowInstance};

pub type PledgeflowSchema = Schema<Query, EmptyMutation, EmptySubscription>;

pub struct Query;

#[Object]
impl Query {
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

pub fn schema(engine: Option<Engine>) -> PledgeflowSchema {
    let mut builder = Schema::build(Query, EmptyMutation, EmptySubscription);
    if let Some(engine) = engine {
        builder = builder.data(engine);
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
    schema: PledgeflowSchema,
    graphiql: bool,
}

pub fn router(engine: Engine, graphiql: bool) -> Router {
    let schema = schema(Some(engine.clone()));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/graphql", get(graphiql_page).post(graphql))
        .with_state(AppState { engine, schema, graphiql })
}

async fn graphql(State(state): State<AppState>, req: GraphQLRequest) -> GraphQLResponse {
    state.schema.execute(req.into_inner()).await.into()
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
