//! Who may call what: every guarded field names its roles; errors carry `extensions.code`
//! (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, BAD_USER_INPUT, CONFLICT, INTERNAL).

use async_graphql::{Context, ErrorExtensions, Guard};

use crate::auth::{AuthError, Claims};

/// The caller as the request's Authorization header showed it.
#[derive(Debug, Clone)]
pub struct Caller(pub Result<Option<Claims>, AuthError>);

pub fn error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

/// A refusal of a whole request before it runs (an extension's, a transport's), with its code.
pub fn request_error(code: &'static str, message: impl Into<String>) -> async_graphql::ServerError {
    let mut error = async_graphql::ServerError::new(message.into(), None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("code", code);
    error.extensions = Some(ext);
    error
}

/// A coded error with a machine-readable `extensions.reason`, for a code that covers several
/// causes (README, "Reasons").
pub fn refusal(code: &'static str, reason: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| {
        e.set("code", code);
        e.set("reason", reason);
    })
}

/// The caller's claims — once `policy::resolve` has checked them against the staff registry,
/// the region, department and division are the registry's — or UNAUTHENTICATED saying why
/// there are none.
pub fn claims<'a>(ctx: &'a Context<'_>) -> async_graphql::Result<&'a Claims> {
    match ctx.data_opt::<Caller>().map(|c| &c.0) {
        Some(Ok(Some(claims))) => Ok(claims),
        Some(Err(AuthError::Registry { reason, message })) => {
            let code = if *reason == crate::domain::reason::REGISTRY_UNAVAILABLE { "UNAVAILABLE" } else { "UNAUTHENTICATED" };
            Err(refusal(code, reason, message.clone()))
        }
        Some(Err(e)) => Err(error("UNAUTHENTICATED", e.to_string())),
        _ => Err(error("UNAUTHENTICATED", AuthError::Missing.to_string())),
    }
}

/// A field open to any of `roles`.
pub struct Roles(pub &'static [&'static str]);

impl Guard for Roles {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let claims = claims(ctx)?;
        if self.0.iter().any(|r| claims.has_role(r)) {
            Ok(())
        } else {
            Err(refusal("FORBIDDEN", crate::domain::reason::ROLE, format!("this needs the role {}", self.0.join(" or "))))
        }
    }
}

/// Operators of the installation: outbox, dead letters, the training clock.
pub const OPERATORS: Roles = Roles(&["regional_admin"]);

impl ErrorCode for crate::store::StoreError {
    fn internal(&self) -> async_graphql::Error {
        match self {
            crate::store::StoreError::Db(e) => e.internal(),
            other => {
                tracing::error!(error = %other, "internal error answering a request");
                error("INTERNAL", "internal error")
            }
        }
    }
}

/// Maps internal failures to a coded GraphQL error without leaking internals.
pub trait ErrorCode: std::fmt::Display {
    fn internal(&self) -> async_graphql::Error {
        tracing::error!(error = %self, "internal error answering a request");
        error("INTERNAL", "internal error")
    }
}

/// A database that cannot record anything (full, read-only, unreachable) is UNAVAILABLE with
/// what to do, not an opaque INTERNAL; the database's own text is logged, never returned.
impl ErrorCode for sea_orm::DbErr {
    fn internal(&self) -> async_graphql::Error {
        match crate::store::unwritable(self) {
            Some(why) => {
                tracing::error!(error = %self, condition = ?why, "the database cannot take writes");
                error("UNAVAILABLE", why.message())
            }
            None => {
                tracing::error!(error = %self, "internal error answering a request");
                error("INTERNAL", "internal error")
            }
        }
    }
}

impl<T: std::fmt::Display> ErrorCode for std::sync::Arc<T> {}

/// Instance `id`, if it is in the caller's scope.
pub async fn visible_instance(
    db: &sea_orm::DatabaseConnection,
    claims: &Claims,
    id: &str,
) -> async_graphql::Result<Option<crate::store::entities::instance::Model>> {
    use sea_orm::{EntityTrait, QueryFilter};
    crate::store::entities::instance::Entity::find_by_id(id.to_string())
        .filter(visible_instances(claims))
        .one(db)
        .await
        .map_err(|e| e.internal())
}

/// The departments of the caller's region; a list matching nothing (never an empty one, which
/// filters would read as "all") when the token names no region or it has none.
pub async fn region_departments(db: &sea_orm::DatabaseConnection, claims: &Claims) -> async_graphql::Result<Vec<String>> {
    let region = claims.region.clone().unwrap_or_default();
    let list = crate::window::registry::departments(db, &region).await.map_err(|e| e.internal())?;
    Ok(if list.is_empty() { vec![String::new()] } else { list.into_iter().map(|(d, _)| d.code).collect() })
}

/// The service window's officers.
pub const WINDOW: Roles = Roles(&["window"]);
/// The approving department's approvers.
pub const APPROVER: Roles = Roles(&["approver"]);

/// Every role that may call the API at all.
pub const ANYONE: Roles = Roles(&["applicant", "window", "approver", "department_head", "division_admin", "inspector", "supervisor", "regional_admin"]);

/// Every staff role.
pub const STAFF: Roles = Roles(&["window", "approver", "department_head", "division_admin", "inspector", "supervisor", "regional_admin"]);

/// The head of an approving department (负责人): extends the legal clock.
pub const DEPARTMENT_HEAD: Roles = Roles(&["department_head"]);

/// The instances `claims` may see, as a condition for the database: staff by their region
/// (regional admins, supervisors), department (window, approvers) or division (division
/// admins, inspectors); applicants by their credit code. Nothing when none applies.
pub fn visible_instances(claims: &Claims) -> sea_orm::Condition {
    use crate::store::entities::instance::Column;
    use sea_orm::ColumnTrait;
    let mut any = sea_orm::Condition::any();
    let mut scopes = 0;
    for role in &claims.roles {
        let (column, value) = match role.as_str() {
            "regional_admin" | "supervisor" => (Column::Region, &claims.region),
            "window" | "approver" | "department_head" => (Column::Department, &claims.department),
            "division_admin" | "inspector" => (Column::Division, &claims.division),
            "applicant" => (Column::ApplicantUscc, &claims.uscc),
            _ => continue,
        };
        if let Some(v) = value {
            if role == "applicant" {
                // An inspection is unannounced: an applicant never sees a supervision task (its
                // draw, inspectors, planned visit, look-at limit); the outcome after the visit
                // reaches it through `Case.inspectionOutcomes` (policy.rs).
                any = any.add(sea_orm::Condition::all().add(column.eq(v.clone())).add(Column::DefinitionName.ne(crate::domain::definitions::SUPERVISION_TASK)));
            } else {
                any = any.add(column.eq(v.clone()));
            }
            scopes += 1;
        }
    }
    if scopes == 0 {
        // An empty `any` is no restriction in SQL; the primary key is never null. Only then:
        // beside a scope it would keep the planner off the scope-led indexes.
        any = any.add(Column::Id.is_null());
    }
    any
}

/// The count of `query`'s instances and one page of them, newest first. The page is found by
/// its ids first (`created_at`, `id` from the scope-and-applicant indexes alone), then read:
/// a search matching tens of thousands sorts index entries, never their rows.
pub async fn instance_page(
    db: &sea_orm::DatabaseConnection,
    query: sea_orm::Select<crate::store::entities::instance::Entity>,
    page: &Page,
) -> async_graphql::Result<(Vec<crate::store::entities::instance::Model>, u64)> {
    use crate::store::entities::instance::{Column, Entity};
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, TransactionTrait};
    // The count and the page from one snapshot: a list whose totalCount disagrees with its
    // pages while the outbox and the sweeper move cases is no list (SQLite's read transaction is
    // one snapshot; PostgreSQL's needs REPEATABLE READ).
    let txn = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), Some(sea_orm::AccessMode::ReadOnly)).await
    } else {
        db.begin().await
    }
    .map_err(|e| e.internal())?;
    let db = &txn;
    let total = query.clone().count(db).await.map_err(|e| e.internal())?;
    let ids = query
        .select_only()
        .column(Column::Id)
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .offset(page.offset)
        .limit(page.first)
        .into_query();
    let rows = Entity::find()
        .filter(Column::Id.in_subquery(ids))
        .order_by_desc(Column::CreatedAt)
        .order_by_desc(Column::Id)
        .all(db)
        .await
        .map_err(|e| e.internal())?;
    txn.commit().await.map_err(|e| e.internal())?;
    Ok((rows, total))
}

/// A connection's `totalCount`: how many there are in all, whatever the page.
#[derive(async_graphql::SimpleObject)]
pub struct ConnectionTotal {
    pub total_count: u64,
}

/// `first`/`after` of a connection, checked: BAD_USER_INPUT names the argument.
pub struct Page {
    pub offset: u64,
    pub first: u64,
}

impl Page {
    pub const DEFAULT: u64 = 50;
    pub const MAX: u64 = 200;
    /// Beyond any list this service keeps, and far inside what a database offset holds.
    pub const MAX_OFFSET: u64 = 1 << 40;

    pub fn from_args(first: Option<i32>, after: Option<String>) -> async_graphql::Result<Self> {
        use async_graphql::connection::{CursorType, OpaqueCursor};
        let bad = |field: &'static str, message: &str| error("BAD_USER_INPUT", message).extend_with(move |_, e| e.set("field", field));
        let first = match first {
            None => Self::DEFAULT,
            Some(n) if n >= 1 && (n as u64) <= Self::MAX => n as u64,
            Some(_) => return Err(bad("first", "first must be between 1 and 200")),
        };
        let offset = match after {
            None => 0,
            // A forged cursor can hold any number: one past what a database offset can hold
            // (or past any list's length) is not a cursor from this list, not a panic.
            Some(c) => OpaqueCursor::<u64>::decode_cursor(&c)
                .ok()
                .and_then(|n| n.0.checked_add(1))
                .filter(|&offset| offset <= Self::MAX_OFFSET)
                .ok_or_else(|| bad("after", "after is not a cursor from this list"))?,
        };
        Ok(Self { offset, first })
    }

    pub fn connection<T: async_graphql::OutputType>(
        &self,
        items: Vec<T>,
        total: u64,
    ) -> async_graphql::connection::Connection<async_graphql::connection::OpaqueCursor<u64>, T, ConnectionTotal, async_graphql::connection::EmptyFields> {
        use async_graphql::connection::{Connection, Edge, OpaqueCursor};
        let mut c = Connection::with_additional_fields(
            self.offset > 0,
            self.offset + (items.len() as u64) < total,
            ConnectionTotal { total_count: total },
        );
        c.edges.extend(items.into_iter().enumerate().map(|(i, item)| Edge::new(OpaqueCursor(self.offset + i as u64), item)));
        c
    }
}

impl ErrorCode for serde_json::Error {}

/// async-graphql answers an argument it cannot coerce once the query has been validated (an
/// `Int` past 32 bits, a `DateTime` or `NaiveDate` that does not parse) with an execution
/// error carrying neither a code nor the argument (found by the API fuzzer, issue #8). That is
/// the caller's mistake: BAD_USER_INPUT, with `field` naming the input field whose value failed
/// (the argument itself when the error's position tells no more), like every other refusal.
pub fn code_coercion_errors(query: &str, variables: &async_graphql::Variables, errors: &mut [async_graphql::ServerError]) {
    // async-graphql's two wordings of an input value error (`InputValueError::custom` and
    // `::expected_type`), each followed by the scalar's name in quotes.
    const PREFIXES: [&str; 2] = ["Failed to parse \"", "Expected input type \""];
    let scalar_of = |m: &str| PREFIXES.iter().find_map(|p| m.strip_prefix(p)).and_then(|rest| rest.split('"').next()).map(str::to_string);
    let uncoded = |e: &async_graphql::ServerError| {
        scalar_of(&e.message).is_some() && !e.path.is_empty() && e.extensions.as_ref().is_none_or(|x| x.get("code").is_none())
    };
    if !errors.iter().any(uncoded) {
        return;
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else { return };
    let mut arguments = Vec::new();
    for (_, op) in doc.operations.iter() {
        collect_arguments(&op.node.selection_set.node, variables, &mut arguments);
    }
    for fragment in doc.fragments.values() {
        collect_arguments(&fragment.node.selection_set.node, variables, &mut arguments);
    }
    for e in errors.iter_mut().filter(|e| uncoded(e)) {
        let scalar = scalar_of(&e.message).unwrap_or_default();
        // The innermost "(occurred while parsing "T")" names the input object holding the field.
        let holder = e.message.split("(occurred while parsing \"").nth(1).and_then(|t| t.split('"').next()).map(|t| t.trim_matches(['[', ']', '!']).to_string());
        let argument = e.locations.first().and_then(|at| arguments.iter().find(|(_, pos, _)| pos == at));
        let field = argument.map(|(name, _, value)| match &holder {
            None => name.clone(),
            Some(holder) => {
                let candidates: Vec<&str> = input_fields().get(holder).into_iter().flatten().filter(|(_, ty)| *ty == scalar).map(|(f, _)| f.as_str()).collect();
                match candidates.as_slice() {
                    [one] => one.to_string(),
                    _ => failing_leaf(&scalar, &candidates, value).or(candidates.first().map(|c| c.to_string())).unwrap_or_else(|| name.clone()),
                }
            }
        });
        let ext = e.extensions.get_or_insert_with(Default::default);
        ext.set("code", "BAD_USER_INPUT");
        if let Some(field) = field {
            ext.set("field", field);
        }
    }
}

/// Errors of a request that never ran (syntax, validation against the schema, the depth and
/// complexity limits) come from async-graphql without a code; they get the one `http.rs` gives
/// requests it cannot read, so that every error a client sees carries one (issue #8).
pub fn code_request_errors(errors: &mut [async_graphql::ServerError]) {
    for e in errors.iter_mut().filter(|e| e.path.is_empty()) {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", "BAD_REQUEST");
        }
    }
}

/// Each input object of the schema: its fields and the named type of each (lists and `!` taken off).
fn input_fields() -> &'static std::collections::HashMap<String, Vec<(String, String)>> {
    use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
    static FIELDS: std::sync::OnceLock<std::collections::HashMap<String, Vec<(String, String)>>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        fn named(t: &Type) -> String {
            match &t.base {
                BaseType::Named(n) => n.to_string(),
                BaseType::List(inner) => named(inner),
            }
        }
        let Ok(doc) = async_graphql::parser::parse_schema(super::sdl()) else { return Default::default() };
        doc.definitions
            .iter()
            .filter_map(|d| match d {
                TypeSystemDefinition::Type(t) => match &t.node.kind {
                    TypeKind::InputObject(o) => Some((
                        t.node.name.node.to_string(),
                        o.fields.iter().map(|f| (f.node.name.node.to_string(), named(&f.node.ty.node))).collect(),
                    )),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    })
}

/// Every argument in `set` (and below): its name, where its value is written, and the value
/// with variables put in.
fn collect_arguments(
    set: &async_graphql::parser::types::SelectionSet,
    variables: &async_graphql::Variables,
    out: &mut Vec<(String, async_graphql::Pos, async_graphql::Value)>,
) {
    use async_graphql::parser::types::Selection;
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                for (name, value) in &f.node.arguments {
                    let konst = value
                        .node
                        .clone()
                        .into_const_with(|v| Ok::<_, std::convert::Infallible>(variables.get(&v).cloned().unwrap_or_default()))
                        .unwrap_or_default();
                    out.push((name.node.to_string(), value.pos, konst));
                }
                collect_arguments(&f.node.selection_set.node, variables, out);
            }
            Selection::InlineFragment(f) => collect_arguments(&f.node.selection_set.node, variables, out),
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// The first of `candidates` inside `value` whose scalar does not parse as `scalar`.
fn failing_leaf(scalar: &str, candidates: &[&str], value: &async_graphql::Value) -> Option<String> {
    use async_graphql::{InputType, Value};
    let fails = |v: &Value| match scalar {
        "Int" => <i32 as InputType>::parse(Some(v.clone())).is_err(),
        "DateTime" => <chrono::DateTime<chrono::Utc> as InputType>::parse(Some(v.clone())).is_err(),
        "NaiveDate" => <chrono::NaiveDate as InputType>::parse(Some(v.clone())).is_err(),
        _ => false,
    };
    match value {
        Value::Object(fields) => fields.iter().find_map(|(name, v)| match v {
            Value::Object(_) | Value::List(_) => failing_leaf(scalar, candidates, v),
            Value::Null => None,
            leaf => (candidates.contains(&name.as_str()) && fails(leaf)).then(|| name.to_string()),
        }),
        Value::List(items) => items.iter().find_map(|v| failing_leaf(scalar, candidates, v)),
        _ => None,
    }
}
