//! The console: the web interface at `/`, a client of the GraphQL API like any other. Its files
//! (`console/`, our own plain ES modules and the vendored Chart.js and GraphiQL) are built into
//! the binary, so an air-gapped office needs nothing from outside; every page is served with a
//! content security policy that lets it load nothing from another host. Besides the files, it
//! serves what the console must know before anyone signs in (`config.json`: the identity
//! provider, whether demo sign-in is on) and, on a demo or training server only, the demo
//! sign-in: the one place this server mints tokens for a browser.

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use chrono::Duration;
use rust_embed::RustEmbed;
use sea_orm::{DatabaseConnection, FromQueryResult};
use serde::Deserialize;

use crate::auth::{Claims, Keys};
use crate::store::stmt;
use crate::window::registry;

#[derive(RustEmbed)]
#[folder = "console/"]
struct Assets;

/// The identity provider the console signs people in with.
#[derive(Debug, Clone)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Clone)]
pub struct Console {
    pub db: DatabaseConnection,
    pub keys: Keys,
    pub demo_login: bool,
    pub oidc: Option<Oidc>,
    pub graphiql: bool,
    /// `connect-src` of the pages: this origin, and the identity provider's for the sign-in.
    csp: HeaderValue,
}

/// How long a demo sign-in lasts: a training session.
const DEMO_TOKEN_HOURS: i64 = 8;

impl Console {
    pub fn new(db: DatabaseConnection, keys: Keys, config: &crate::config::Config) -> Self {
        let oidc = config.oidc_client_id.as_ref().zip(config.jwt_issuer.as_ref()).map(|(client, issuer)| Oidc {
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client.clone(),
            scope: config.oidc_scope.clone(),
        });
        let provider = oidc.as_ref().and_then(|o| origin(&o.issuer)).map(|o| format!(" {o}")).unwrap_or_default();
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; \
             connect-src 'self'{provider}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        // Demo identities need this server's own signing key: with an outside issuer there is none.
        let demo_login = config.demo_login && keys.can_mint();
        Self { db, keys, demo_login, oidc, graphiql: config.graphiql, csp: HeaderValue::from_str(&csp).expect("a CSP of ASCII") }
    }

    pub fn router(self) -> Router {
        let mut router = Router::new()
            .route("/", get(|State(c): State<Console>, h: HeaderMap| async move { c.file("index.html", &h) }))
            .route("/console/config.json", get(config_json))
            .route(
                "/console/{*path}",
                // Other methods on the files are not found, not "not allowed": nothing says that
                // a demo sign-in would be there on another server.
                get(|State(c): State<Console>, Path(path): Path<String>, h: HeaderMap| async move { c.file(&path, &h) }).fallback(|| async { StatusCode::NOT_FOUND }),
            );
        if self.graphiql {
            router = router.route("/graphiql", get(|State(c): State<Console>, h: HeaderMap| async move { c.graphiql_page(&h) }));
        }
        if self.demo_login {
            router = router.route("/console/demo/identities", get(demo_identities)).route("/console/demo/token", post(demo_token));
        }
        router.with_state(self)
    }

    /// An embedded file with its type, an ETag of its content (so browsers revalidate instead of
    /// keeping an old console after an upgrade) and the headers that keep it to this origin.
    fn file(&self, path: &str, request: &HeaderMap) -> Response {
        let Some(file) = Assets::get(path) else { return (StatusCode::NOT_FOUND, "no such file").into_response() };
        let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12]));
        let mut response = if request.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            ([(header::CONTENT_TYPE, content_type(path))], file.data.into_owned()).into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        self.guard(headers, self.csp.clone());
        response
    }

    /// GraphiQL, from the same embedded files; its editor styles are set inline by the library.
    pub fn graphiql_page(&self, request: &HeaderMap) -> Response {
        let mut response = self.file("graphiql.html", request);
        let csp = self.csp.to_str().unwrap_or_default().replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");
        self.guard(response.headers_mut(), HeaderValue::from_str(&csp).expect("ASCII"));
        response
    }

    fn guard(&self, headers: &mut HeaderMap, csp: HeaderValue) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
}

/// Every embedded file's path, for the test that no page or asset names an outside host.
pub fn asset_paths() -> Vec<String> {
    Assets::iter().map(|p| p.into_owned()).collect()
}

/// An embedded file's content.
pub fn asset(path: &str) -> Option<Vec<u8>> {
    Assets::get(path).map(|f| f.data.into_owned())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

/// `https://idp.example.gov.cn/realms/x` → `https://idp.example.gov.cn`.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?;
    Some(format!("{scheme}://{host}"))
}

async fn config_json(State(c): State<Console>) -> Response {
    let oidc = c.oidc.as_ref().map(|o| serde_json::json!({ "issuer": o.issuer, "clientId": o.client_id, "scope": o.scope }));
    let mut response = Json(serde_json::json!({ "demoLogin": c.demo_login, "oidc": oidc })).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(FromQueryResult, serde::Serialize)]
struct StaffRow {
    id: String,
    name: String,
    roles: String,
    department: Option<String>,
    division: Option<String>,
}

#[derive(FromQueryResult, serde::Serialize)]
struct ApplicantRow {
    uscc: String,
    name: String,
}

/// The identities a trainer may pick: every active member of staff, and the enterprises on file.
async fn demo_identities(State(c): State<Console>) -> Response {
    let staff = StaffRow::find_by_statement(stmt(&c.db, "SELECT id, name, roles, department, division FROM staff WHERE active = 1 ORDER BY id", vec![])).all(&c.db).await;
    let applicants = ApplicantRow::find_by_statement(stmt(&c.db, "SELECT uscc, name FROM applicants ORDER BY name LIMIT 50", vec![])).all(&c.db).await;
    match (staff, applicants) {
        (Ok(staff), Ok(applicants)) => {
            let staff: Vec<serde_json::Value> = staff
                .into_iter()
                .map(|s| {
                    let roles: Vec<String> = serde_json::from_str(&s.roles).unwrap_or_default();
                    serde_json::json!({ "id": s.id, "name": s.name, "roles": roles, "department": s.department, "division": s.division })
                })
                .collect();
            Json(serde_json::json!({ "staff": staff, "applicants": applicants })).into_response()
        }
        (Err(e), _) | (_, Err(e)) => refused(StatusCode::SERVICE_UNAVAILABLE, format!("the registry cannot be read now: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoPick {
    staff: Option<String>,
    applicant: Option<String>,
}

/// A token for the identity picked, with exactly what the registry gives it (the API resolves
/// every token against the registry again, so this grants nothing a real sign-in would not).
async fn demo_token(State(c): State<Console>, pick: Result<Json<DemoPick>, axum::extract::rejection::JsonRejection>) -> Response {
    let Ok(Json(pick)) = pick else { return refused(StatusCode::BAD_REQUEST, "expected {\"staff\": ID} or {\"applicant\": USCC}") };
    let now = chrono::Utc::now();
    let valid_for = Duration::hours(DEMO_TOKEN_HOURS);
    let claims = match (pick.staff, pick.applicant) {
        (Some(id), None) => match registry::staff(&c.db, &id).await {
            Ok(Some(s)) if s.active => Claims { name: Some(s.name), region: Some(s.region), department: s.department, division: s.division, ..Claims::new(&s.id, s.roles, now, valid_for) },
            Ok(_) => return refused(StatusCode::NOT_FOUND, format!("no active member of staff {id}")),
            Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
        (None, Some(uscc)) => match registry::applicant(&c.db, &uscc).await {
            Ok(Some(a)) => Claims { name: Some(a.name), uscc: Some(a.uscc.clone()), ..Claims::new(&format!("applicant-{}", a.uscc), vec!["applicant".into()], now, valid_for) },
            Ok(None) => return refused(StatusCode::NOT_FOUND, format!("no enterprise {uscc} on file")),
            Err(e) => return refused(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        },
        _ => return refused(StatusCode::BAD_REQUEST, "pick one: staff or applicant"),
    };
    match c.keys.mint(&claims) {
        Some(token) => {
            tracing::info!(subject = %claims.sub, "demo sign-in");
            let mut response = Json(serde_json::json!({ "token": token })).into_response();
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        None => refused(StatusCode::CONFLICT, "tokens here are an outside issuer's: this server cannot mint one"),
    }
}

fn refused(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}
