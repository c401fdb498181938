//! The HTTP surface: health probes and the GraphQL endpoint (with GraphiQL).

pub mod access;
pub mod audit;
pub mod bundle;
pub mod checks;
pub mod cost;
pub mod due_process;
pub mod enterprise;
pub mod events;
pub mod http;
pub mod insight;
pub mod licences;
pub mod live;
pub mod loaders;
pub mod operations;
pub mod ordinary;
pub mod plain_text;
pub mod policy;
pub mod public;
pub mod quality;
pub mod reads;
pub mod types;
pub mod supervision;
pub mod viewer;
pub mod window;
pub mod ws;

use std::sync::Arc;

use async_graphql::{MergedObject, Object, Schema, ID};
use axum::{
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::get,
    Json, Router,
};

use crate::auth::Keys;
use crate::clock::ManualClock;
use crate::delivery::Outbox;
use crate::runtime::Engine;
use access::ErrorCode;
use types::{WorkflowDefinition, WorkflowInstance};

pub type PledgeflowSchema = Schema<Query, Mutation, live::SubscriptionRoot>;

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
    /// How often live subscriptions look for news.
    pub live_poll: std::time::Duration,
    /// The background loops of this process, for `/readyz`.
    pub loops: crate::health::Loops,
    /// Shares per credit tier for the random inspection draw.
    pub sampling: crate::supervision::draw::Sampling,
    /// Guards the unauthenticated fields (public disclosure).
    pub public_limiter: Arc<public::PublicLimiter>,
    /// The Prometheus recorder: `/metrics` is served when present.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// A streaming replica for queries (`PLEDGEFLOW_READ_DATABASE_URL`).
    pub reads: Option<Arc<reads::ReadReplica>>,
}

#[derive(MergedObject, Default)]
pub struct Query(WorkflowQuery, window::WindowQuery, supervision::SupervisionQuery, operations::OperationsQuery, public::PublicQuery, quality::QualityQuery, audit::AuditQuery, insight::InsightQuery, bundle::BundleQuery, licences::LicenceQuery, enterprise::EnterpriseQuery, viewer::ViewerQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(events::EventMutation, window::WindowMutation, due_process::DueProcessMutation, ordinary::OrdinaryMutation, supervision::SupervisionMutation, operations::OperationsMutation, quality::QualityMutation, bundle::BundleMutation);

#[derive(Default)]
pub struct WorkflowQuery;

#[derive(async_graphql::InputObject, Default)]
pub struct WorkflowInstanceFilter {
    /// Only instances of this definition (e.g. `material-deferral`).
    pub definition: Option<String>,
    pub state: Option<String>,
    /// Children of this instance (a case's supervision tasks).
    pub parent_id: Option<ID>,
    /// The applicant's unified social credit code.
    pub applicant_uscc: Option<String>,
    /// A fragment of the applicant's name, one character or more (Chinese names included).
    pub applicant_name: Option<String>,
    /// The licence number a case issued.
    pub licence_number: Option<String>,
    pub item_code: Option<String>,
    pub mode: Option<crate::window::catalogue::Mode>,
    /// Opened at or after this instant.
    pub opened_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Opened before this instant.
    pub opened_to: Option<chrono::DateTime<chrono::Utc>>,
    /// With a pending timer (a deadline, a limit, a reminder) due before this instant.
    pub deadline_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// The search conditions of a filter, each an index lookup within the caller's scope (the scope
/// condition is the query's already).
/// A condition written with `?` placeholders, in the backend's own (sea-query reads `$n` in a
/// PostgreSQL condition and renumbers it into the statement).
fn condition<V: Into<sea_orm::Value>>(backend: sea_orm::DbBackend, sql: impl AsRef<str>, values: impl IntoIterator<Item = V>) -> sea_orm::sea_query::Expr {
    sea_orm::sea_query::Expr::cust_with_values(crate::store::placeholders(backend, sql.as_ref()), values)
}

async fn search(
    mut query: sea_orm::Select<crate::store::entities::instance::Entity>,
    f: &WorkflowInstanceFilter,
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::Select<crate::store::entities::instance::Entity>, sea_orm::DbErr> {
    let backend = sea_orm::ConnectionTrait::get_database_backend(db);
    use crate::store::entities::instance::Column;
    use sea_orm::{ColumnTrait, QueryFilter};
    if let Some(u) = &f.applicant_uscc {
        query = query.filter(Column::ApplicantUscc.eq(u.trim().to_uppercase()));
    }
    if let Some(name) = f.applicant_name.as_deref() {
        match crate::store::name_index::matching(db, name).await? {
            Some(codes) => query = query.filter(Column::ApplicantUscc.is_in(codes)),
            None => {
                if let Some((sql, values)) = crate::store::name_index::condition("workflow_instances.applicant_uscc", name) {
                    query = query.filter(condition(backend, sql, values));
                }
            }
        }
    }
    let on_case = |column: &str, value: sea_orm::Value| condition(backend, format!("workflow_instances.id IN (SELECT instance_id FROM cases WHERE {column} = ?)"), [value]);
    if let Some(n) = &f.licence_number {
        query = query.filter(on_case("licence_number", n.trim().into()));
    }
    if let Some(c) = &f.item_code {
        query = query.filter(on_case("item_code", c.trim().into()));
    }
    if let Some(m) = f.mode {
        query = query.filter(on_case("mode", m.as_str().into()));
    }
    if let Some(t) = f.opened_from {
        query = query.filter(Column::CreatedAt.gte(t.timestamp_millis()));
    }
    if let Some(t) = f.opened_to {
        query = query.filter(Column::CreatedAt.lt(t.timestamp_millis()));
    }
    if let Some(t) = f.deadline_before {
        query = query.filter(condition(
            backend,
            "workflow_instances.id IN (SELECT instance_id FROM workflow_timers WHERE status = 'pending' AND due_at < ?)",
            [t.timestamp_millis()],
        ));
    }
    Ok(query)
}

#[Object]
impl WorkflowQuery {
    /// Every deployed definition, newest version of each name, by name.
    #[graphql(guard = "access::ANYONE")]
    async fn workflow_definitions(
        &self,
        ctx: &async_graphql::Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<async_graphql::connection::Connection<async_graphql::connection::OpaqueCursor<u64>, WorkflowDefinition, access::ConnectionTotal, async_graphql::connection::EmptyFields>> {
        let engine = ctx.data::<Engine>()?;
        let page = access::Page::from_args(first, after)?;
        let all = engine.workflows.set.latest_all();
        let items = all.iter().skip(page.offset as usize).take(page.first as usize).map(|d| d.as_ref().into()).collect();
        Ok(page.connection(items, all.len() as u64))
    }

    /// One definition; the newest version unless `version` is given.
    #[graphql(guard = "access::ANYONE")]
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

    /// One instance, if it exists and is in the caller's scope (otherwise null: an instance
    /// outside it is not found, not forbidden).
    #[graphql(guard = "access::ANYONE")]
    async fn workflow_instance(&self, ctx: &async_graphql::Context<'_>, id: ID) -> async_graphql::Result<Option<WorkflowInstance>> {
        let engine = ctx.data::<Engine>()?;
        let row = access::visible_instance(&engine.db, access::claims(ctx)?, &id).await?;
        row.map(|m| m.try_into().map(WorkflowInstance).map_err(|e: crate::store::StoreError| e.internal())).transpose()
    }

    /// Instances in the caller's scope, newest first.
    #[graphql(guard = "access::ANYONE")]
    async fn workflow_instances(
        &self,
        ctx: &async_graphql::Context<'_>,
        filter: Option<WorkflowInstanceFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<async_graphql::connection::Connection<async_graphql::connection::OpaqueCursor<u64>, WorkflowInstance, access::ConnectionTotal, async_graphql::connection::EmptyFields>> {
        use crate::store::entities::instance::{Column, Entity};
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        let engine = ctx.data::<Engine>()?;
        let claims = access::claims(ctx)?;
        let page = access::Page::from_args(first, after)?;
        let filter = filter.unwrap_or_default();
        let mut query = Entity::find().filter(access::visible_instances(claims));
        if let Some(d) = &filter.definition {
            query = query.filter(Column::DefinitionName.eq(d.clone()));
        }
        if let Some(st) = &filter.state {
            query = query.filter(Column::State.eq(st.clone()));
        }
        if let Some(p) = &filter.parent_id {
            query = query.filter(Column::ParentId.eq(p.to_string()));
        }
        query = search(query, &filter, &engine.db).await.map_err(|e| e.internal())?;
        let (rows, total) = access::instance_page(&engine.db, query, &page).await?;
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        ctx.data::<loaders::Loaders>()?.prefetch(ctx, &ids).await.map_err(|e| e.internal())?;
        let items = rows
            .into_iter()
            .map(|m| m.try_into().map(WorkflowInstance))
            .collect::<Result<Vec<_>, crate::store::StoreError>>()
            .map_err(|e| e.internal())?;
        Ok(page.connection(items, total))
    }
}

pub fn schema(services: Option<Services>) -> PledgeflowSchema {
    let mut builder = Schema::build(Query::default(), Mutation::default(), live::SubscriptionRoot)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .extension(checks::RequestChecks);
    if let Some(services) = services {
        builder = builder.data(services.engine.clone()).data(live::PollEvery(services.live_poll)).data(services);
    }
    builder.finish()
}

/// The schema as SDL: what `export-schema` writes to `graphql/schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

#[derive(Clone)]
struct AppState {
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    engine: Engine,
    keys: Keys,
    schema: PledgeflowSchema,
    graphiql: bool,
    /// Serves GraphiQL's page to a browser asking `/graphql` for HTML.
    console: crate::console::Console,
    loops: crate::health::Loops,
    public_limiter: Arc<public::PublicLimiter>,
    reads: Option<Arc<reads::ReadReplica>>,
}

/// Deepest query accepted; GraphiQL's introspection query needs 13.
pub const MAX_DEPTH: usize = 15;
/// Most expensive query accepted (each field costs 1; lists are bounded by their page size).
pub const MAX_COMPLEXITY: usize = 2_000;
/// The header naming each request, set on every response.
pub const REQUEST_ID: &str = "x-request-id";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub fn router(services: Services, config: &crate::config::Config) -> Router {
    let (graphiql, cors_origins, limits) = (config.graphiql, &config.cors_origins, &config.http);
    let engine = services.engine.clone();
    let keys = services.keys.clone();
    let metrics = services.metrics.clone();
    let loops = services.loops.clone();
    let public_limiter = services.public_limiter.clone();
    let reads = services.reads.clone();
    let console = crate::console::Console::new(engine.db.clone(), keys.clone(), config);
    let schema = schema(Some(services));
    let router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(prometheus))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .with_state(AppState { metrics, engine, keys, schema, graphiql, console: console.clone(), public_limiter, loops, reads })
        .merge(console.router())
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        // The request timeout covers reading the body and answering; the body timeout the
        // pauses between its pieces (a body trickled faster is still cut by the former).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_timeout))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(axum::middleware::map_response(http::timeout_as_json))
        .layer(axum::Extension(public::TrustedProxies(std::sync::Arc::new(config.trusted_proxies.clone()))))
        // Every response names its request (the caller's own id kept, else a new one), so an
        // error can be quoted to support and found in the log.
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(tower_http::request_id::MakeRequestUuid))
        .layer(axum::middleware::map_request(http::plain_request_id));
    if cors_origins.is_empty() {
        return router;
    }
    // Origins were checked when the configuration was read.
    let origins: Vec<axum::http::HeaderValue> = cors_origins.iter().filter_map(|o| o.parse().ok()).collect();
    router.layer(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
            .allow_headers([axum::http::header::AUTHORIZATION, axum::http::header::CONTENT_TYPE, axum::http::header::ACCEPT])
            .expose_headers([axum::http::HeaderName::from_static(REQUEST_ID)]),
    )
}

async fn execute(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    client: public::ClientAddr,
    media: &'static str,
    request: async_graphql::Request,
) -> axum::response::Response {
    let header = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("(not text)"));
    let caller = access::Caller(policy::caller(&state.engine.db, state.keys.from_header(header).await).await);
    if let Some(refusal) = http::introspection_refused(state.graphiql, &caller, &request) {
        return http::respond(media, refusal);
    }
    let request_id = headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-").to_string();
    let operation = request.operation_name.as_deref().unwrap_or("-");
    let span = tracing::info_span!(
        "graphql",
        otel.name = %format!("graphql {operation}"),
        otel.kind = "server",
        request_id = %request_id,
        operation,
        actor = caller.0.as_ref().ok().and_then(|c| c.as_ref()).map_or("-", |c| c.sub.as_str()),
        case = case_of(&request).as_deref().unwrap_or("-"),
    );
    crate::traces::continue_trace(&span, headers);
    // A query may read on the replica (the request's Engine then holds its connection); a
    // mutation writes on the primary and holds its caller's queries there until replayed.
    let subject = caller.0.as_ref().ok().and_then(|c| c.as_ref()).map(|c| c.sub.clone());
    let query_only = state.reads.is_some() && reads::is_query(&request);
    let on_replica = match state.reads.as_deref() {
        Some(r) if query_only => {
            let route = r.route(subject.as_deref());
            metrics::counter!(crate::telemetry::QUERIES_ROUTED, "on" => if route == reads::Route::Replica { "replica" } else { "primary" }).increment(1);
            (route == reads::Route::Replica).then(|| Engine { db: r.db().clone(), ..state.engine.clone() })
        }
        _ => None,
    };
    let loaders = loaders::Loaders::new(&on_replica.as_ref().unwrap_or(&state.engine).db);
    let started = std::time::Instant::now();
    let (query, variables) = (request.query.clone(), request.variables.clone());
    let mut request = request.data(caller).data(loaders).data(client);
    if let Some(engine) = on_replica {
        request = request.data(engine);
    }
    let mut response = {
        use tracing::Instrument;
        state.schema.execute(request).instrument(span.clone()).await
    };
    if let (Some(r), Some(subject), false) = (state.reads.as_deref(), subject.as_deref(), query_only) {
        r.wrote(&state.engine.db, subject).await;
    }
    access::code_coercion_errors(&query, &variables, &mut response.errors);
    access::code_request_errors(&mut response.errors);
    // An internal error says nothing of its cause to the caller; the request id finds it in the log.
    for e in response.errors.iter_mut().filter(|e| e.extensions.as_ref().and_then(|x| x.get("code")).is_some_and(|c| *c == async_graphql::Value::from("INTERNAL"))) {
        e.extensions.get_or_insert_with(Default::default).set("requestId", request_id.clone());
    }
    let outcome = if response.errors.is_empty() { "ok" } else { "error" };
    metrics::counter!(crate::telemetry::REQUESTS, "outcome" => outcome).increment(1);
    metrics::histogram!(crate::telemetry::REQUEST_SECONDS).record(started.elapsed().as_secs_f64());
    span.in_scope(|| {
        if response.errors.is_empty() {
            tracing::debug!("answered")
        } else {
            let codes: Vec<String> = response.errors.iter().map(|e| e.extensions.as_ref().and_then(|x| x.get("code")).map_or("-".into(), |c| c.to_string())).collect();
            tracing::info!(errors = ?codes, "answered with errors")
        }
    });
    http::respond(media, response)
}

/// The case or task a request is about, for the log: the first `caseId`, `taskId`,
/// `instanceId` or `id` among its variables or their `input` objects.
fn case_of(request: &async_graphql::Request) -> Option<String> {
    const KEYS: [&str; 4] = ["caseId", "taskId", "instanceId", "id"];
    let vars = serde_json::to_value(&request.variables).ok()?;
    let pick = |v: &serde_json::Value| KEYS.iter().find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string));
    let top = vars.as_object()?;
    pick(&vars).or_else(|| top.values().find_map(pick))
}

/// graphql-transport-ws (and the older graphql-ws), served by `ws`: the token comes in the
/// connection_init payload and is checked again at every operation; the connection closes when
/// it expires.
async fn graphql_ws(
    State(state): State<AppState>,
    client: public::ClientAddr,
    protocol: ws::Protocol,
    upgrade: axum::extract::WebSocketUpgrade,
) -> axum::response::Response {
    let AppState { schema, keys, engine, graphiql, public_limiter, .. } = state;
    let connection = ws::Connection { schema, keys, db: engine.db, graphiql, client, public: public_limiter.per_connection() };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .max_message_size(MAX_BODY_BYTES)
        .max_frame_size(MAX_BODY_BYTES)
        .on_upgrade(move |socket| connection.serve(socket, protocol))
        .into_response()
}

async fn graphql_post(
    State(state): State<AppState>,
    client: public::ClientAddr,
    headers: axum::http::HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> axum::response::Response {
    let Some(media) = http::negotiate(&headers) else {
        return (StatusCode::NOT_ACCEPTABLE, "accepts application/graphql-response+json or application/json").into_response();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return http::body_refused(media, &rejection),
    };
    match http::parse_post(&headers, &body) {
        Ok(request) => execute(&state, &headers, client, media, request).await,
        Err((status, message)) => http::request_error(media, status, &message),
    }
}

async fn graphql_get(
    State(state): State<AppState>,
    client: public::ClientAddr,
    headers: axum::http::HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> axum::response::Response {
    let wants_page = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_page && query.is_none() {
        return if state.graphiql {
            state.console.graphiql_page(&headers)
        } else {
            StatusCode::NOT_FOUND.into_response()
        };
    }
    let Some(media) = http::negotiate(&headers) else {
        return (StatusCode::NOT_ACCEPTABLE, "accepts application/graphql-response+json or application/json").into_response();
    };
    match http::parse_get(query.as_deref().unwrap_or("")) {
        Ok(request) => execute(&state, &headers, client, media, request).await,
        Err((status, message)) => {
            let mut response = http::request_error(media, status, &message);
            if status == StatusCode::METHOD_NOT_ALLOWED {
                response.headers_mut().insert(axum::http::header::ALLOW, axum::http::HeaderValue::from_static("POST"));
            }
            response
        }
    }
}

/// Prometheus text format; 404 when this process records no metrics.
async fn prometheus(State(state): State<AppState>) -> axum::response::Response {
    let Some(handle) = &state.metrics else { return StatusCode::NOT_FOUND.into_response() };
    for l in state.loops.report(MAX_PASS) {
        metrics::gauge!(crate::telemetry::LOOP_UP, "loop" => l.name).set(if l.up { 1.0 } else { 0.0 });
    }
    match crate::telemetry::render(handle, &state.engine).await {
        Ok(text) => ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics: database gauges unavailable");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// A loop pass running longer than this is behind (`/readyz`): a sweep or an outbox batch
/// stuck on a lock or a mail server that outlasts its timeouts.
pub const MAX_PASS: std::time::Duration = std::time::Duration::from_secs(600);

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = crate::store::ping(&state.engine.db).await;
    let definitions = state.engine.workflows.set.all().count();
    let loops = state.loops.report(MAX_PASS);
    let ready = database && definitions > 0 && loops.iter().all(crate::health::LoopReport::healthy);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "database": database, "definitions": definitions, "loops": loops })))
}
