//! GraphQL over HTTP, by hand rather than through async-graphql-axum (which answers request
//! errors with 200 and `data: null`, runs mutations sent by GET, accepts batches and ignores
//! body limits): POST for everything, GET for queries only (405 for a mutation), Accept
//! negotiated between `application/graphql-response+json` (the default; request errors are 400
//! with no `data`) and `application/json` (always 200), and a body size limit.

use async_graphql::{parser::types::OperationType, Request, Response, Variables};
use axum::{
    body::Bytes,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response as HttpResponse},
};
use serde::Deserialize;
use serde_json::json;

pub const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";

/// Which media type the client takes, or `None` when it accepts neither we speak. A client
/// that names neither (no Accept, `*/*`) gets `application/json`, as the spec advises for
/// clients that may predate `application/graphql-response+json`.
pub fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(JSON);
    };
    let mut best: Option<(&'static str, f32)> = None;
    for part in accept.split(',') {
        let mut bits = part.split(';').map(str::trim);
        let media = bits.next().unwrap_or_default().to_ascii_lowercase();
        let q = bits
            .find_map(|b| b.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()))
            .unwrap_or(1.0);
        let ours = match media.as_str() {
            GRAPHQL_RESPONSE => GRAPHQL_RESPONSE,
            JSON | "application/*" | "*/*" => JSON,
            _ => continue,
        };
        // Equal weights: the exact media type named wins over a wildcard.
        let exact = !media.contains('*');
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq || (q == bq && exact && ours == GRAPHQL_RESPONSE)) {
            best = Some((ours, q));
        }
    }
    best.map(|(m, _)| m)
}

/// A request the server refuses before executing anything.
pub fn request_error(media: &'static str, status: StatusCode, message: &str) -> HttpResponse {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": "BAD_REQUEST" } }] });
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media))], body.to_string()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<serde_json::Value>,
    extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

fn to_request(body: Body) -> Result<Request, String> {
    let query = body.query.ok_or("the request has no query")?;
    let mut request = Request::new(query);
    if let Some(name) = body.operation_name {
        request = request.operation_name(name);
    }
    match body.variables {
        None | Some(serde_json::Value::Null) => {}
        Some(v @ serde_json::Value::Object(_)) => request = request.variables(Variables::from_json(v)),
        Some(_) => return Err("variables must be an object".into()),
    }
    if let Some(ext) = body.extensions {
        for (k, v) in ext {
            let value = async_graphql::Value::from_json(v).map_err(|e| format!("extensions: {e}"))?;
            request.extensions.insert(k, value);
        }
    }
    Ok(request)
}

/// Parses a POST body: JSON only, one operation (no batches).
pub fn parse_post(headers: &HeaderMap, bytes: &Bytes) -> Result<Request, (StatusCode, String)> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if media != JSON {
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("expected Content-Type: application/json, got {content_type:?}")));
    }
    let body: Body = serde_json::from_slice(bytes).map_err(|e| (StatusCode::BAD_REQUEST, format!("the body is not a GraphQL request: {e}")))?;
    to_request(body).map_err(|m| (StatusCode::BAD_REQUEST, m))
}

/// Parses GET parameters; a mutation is refused with 405 (GET must not change anything).
pub fn parse_get(query: &str) -> Result<Request, (StatusCode, String)> {
    let mut body = Body { query: None, operation_name: None, variables: None, extensions: None };
    for (k, v) in form_urlencoded(query) {
        match k.as_str() {
            "query" => body.query = Some(v),
            "operationName" => body.operation_name = Some(v),
            "variables" => {
                body.variables = Some(serde_json::from_str(&v).map_err(|e| (StatusCode::BAD_REQUEST, format!("variables: {e}")))?)
            }
            "extensions" => {
                body.extensions = Some(serde_json::from_str(&v).map_err(|e| (StatusCode::BAD_REQUEST, format!("extensions: {e}")))?)
            }
            _ => {}
        }
    }
    let request = to_request(body).map_err(|m| (StatusCode::BAD_REQUEST, m))?;
    if let Ok(doc) = async_graphql::parser::parse_query(&request.query) {
        let name = request.operation_name.as_deref();
        let is_mutation = doc.operations.iter().any(|(n, op)| {
            (name.is_none() || n.map(|n| n.as_str()) == name) && op.node.ty == OperationType::Mutation
        });
        if is_mutation {
            return Err((StatusCode::METHOD_NOT_ALLOWED, "mutations must be sent with POST".into()));
        }
    }
    Ok(request)
}

fn form_urlencoded(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).into_owned().collect()
}

/// The HTTP response for an executed request. With `application/graphql-response+json`, a
/// request that failed before execution (no data, errors without a path) is 400 and has no
/// `data`; with `application/json` everything is 200.
pub fn respond(media: &'static str, response: Response) -> HttpResponse {
    let request_failed = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({"errors": [{"message": "internal error"}]}));
    let status = if request_failed {
        if let Some(map) = body.as_object_mut() {
            map.remove("data");
        }
        if media == GRAPHQL_RESPONSE { StatusCode::BAD_REQUEST } else { StatusCode::OK }
    } else {
        StatusCode::OK
    };
    let text = body.to_string();
    if text.len() > MAX_RESPONSE_BYTES {
        // Whatever the query cost was counted at, an answer this large is not sent.
        let message = format!("the answer would be {} bytes, more than the {MAX_RESPONSE_BYTES} allowed: ask for smaller pages or fewer fields", text.len());
        return refusal(media, StatusCode::OK, "RESPONSE_TOO_LARGE", &message);
    }
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media))], text).into_response()
}

/// The largest answer sent.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// An error before execution, with its own code and status.
fn refusal(media: &'static str, status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static(media))], body.to_string()).into_response()
}

/// A body that could not be read: over the limit (413, `PAYLOAD_TOO_LARGE`), too slow between
/// its pieces (408, `TIMEOUT`), or broken off (400).
pub fn body_refused(media: &'static str, rejection: &axum::extract::rejection::BytesRejection) -> HttpResponse {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return refusal(media, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", &format!("the request body is over {} bytes", super::MAX_BODY_BYTES));
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return refusal(media, StatusCode::REQUEST_TIMEOUT, "TIMEOUT", "the request body arrived too slowly");
        }
        source = e.source();
    }
    refusal(media, StatusCode::BAD_REQUEST, "BAD_REQUEST", "the request body could not be read")
}

/// The request timeout's bare 408 (tower-http's), given a GraphQL error body.
pub async fn timeout_as_json(response: HttpResponse) -> HttpResponse {
    if response.status() == StatusCode::REQUEST_TIMEOUT && !response.headers().contains_key(header::CONTENT_TYPE) {
        return refusal(JSON, StatusCode::REQUEST_TIMEOUT, "TIMEOUT", "the request took too long and was cut off");
    }
    response
}

/// Whether the document asks `__schema` or `__type` anywhere (`__typename` is not introspection).
pub fn introspects(query: &str) -> bool {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk(set: &SelectionSet) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => matches!(f.node.name.node.as_str(), "__schema" | "__type") || walk(&f.node.selection_set.node),
            Selection::InlineFragment(f) => walk(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => false,
        })
    }
    let Ok(doc) = async_graphql::parser::parse_query(query) else { return false };
    doc.operations.iter().any(|(_, op)| walk(&op.node.selection_set.node)) || doc.fragments.values().any(|f| walk(&f.node.selection_set.node))
}

/// With GraphiQL off (production), the schema is described only to a caller with a valid token.
pub fn introspection_refused(graphiql: bool, caller: &super::access::Caller, request: &Request) -> Option<Response> {
    if graphiql || matches!(caller.0, Ok(Some(_))) || !introspects(&request.query) {
        return None;
    }
    let why = match &caller.0 {
        Err(e) => format!("introspection needs a valid token: {e}"),
        Ok(_) => "introspection needs a token".to_string(),
    };
    Some(Response::from_errors(vec![super::access::request_error("UNAUTHENTICATED", why)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accept_is_negotiated() {
        assert_eq!(negotiate(&HeaderMap::new()), Some(JSON));
        assert_eq!(negotiate(&accept("application/json")), Some(JSON));
        assert_eq!(negotiate(&accept("application/graphql-response+json, application/json;q=0.9")), Some(GRAPHQL_RESPONSE));
        assert_eq!(negotiate(&accept("application/json, application/graphql-response+json;q=0.5")), Some(JSON));
        assert_eq!(negotiate(&accept("*/*")), Some(JSON));
        assert_eq!(negotiate(&accept("*/*, application/graphql-response+json")), Some(GRAPHQL_RESPONSE));
        assert_eq!(negotiate(&accept("text/plain")), None);
    }

    #[test]
    fn introspection_is_told_from_typename() {
        assert!(introspects("{ __schema { types { name } } }"));
        assert!(introspects("query Q { ...F } fragment F on Query { __type(name: \"Query\") { name } }"));
        assert!(introspects("{ ... on Query { __schema { queryType { name } } } }"));
        assert!(!introspects("{ __typename }"));
        assert!(!introspects("not graphql"));
    }

    #[test]
    fn get_refuses_mutations_and_posts_must_be_json() {
        assert_eq!(parse_get("query=mutation%20%7B%20x%20%7D").unwrap_err().0, StatusCode::METHOD_NOT_ALLOWED);
        assert!(parse_get("query=%7B%20x%20%7D").is_ok());
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(parse_post(&h, &Bytes::from_static(b"{}")).unwrap_err().0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert_eq!(parse_post(&h, &Bytes::from_static(b"[{\"query\":\"{x}\"}]")).unwrap_err().0, StatusCode::BAD_REQUEST);
        assert!(parse_post(&h, &Bytes::from_static(b"{\"query\":\"{x}\",\"variables\":null}")).is_ok());
    }
}

/// A caller's `x-request-id` is kept only if it is a plain token (letters, digits, `.`, `_`,
/// `:`, `-`; at most 128): it is repeated in every log line, span and error of the request, so
/// anything else is dropped here and a fresh id given instead.
pub async fn plain_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let plain = |v: &[u8]| !v.is_empty() && v.len() <= 128 && v.iter().all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(b));
    if request.headers().get(super::REQUEST_ID).is_some_and(|v| !plain(v.as_bytes())) {
        request.headers_mut().remove(super::REQUEST_ID);
    }
    request
}
