//! One websocket connection at `/graphql/ws` (graphql-transport-ws, or the older graphql-ws).
//!
//! The token arrives once, in `connection_init`, but a connection may live for hours: so every
//! operation (`subscribe`/`start`) checks it again — expired by the real clock (never the
//! training clock: a token's lifetime is real time), or no longer verifying — and the
//! connection is closed (4401) the moment it expires, ending its subscriptions. Each operation
//! gets DataLoaders of its own (a subscription's without a cache, so every event reads fresh
//! rows); the unauthenticated fields are limited per connection.

use std::future::ready;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::{Data, Executor, Request, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{stream::BoxStream, SinkExt, StreamExt};
use sea_orm::DatabaseConnection;

use super::access::Caller;
use super::loaders::Loaders;
use super::public::{ClientAddr, ConnectionLimiter};
use super::PledgeflowSchema;
use crate::auth::{Claims, Keys};

/// Close code when the token runs out (graphql-transport-ws reserves 4401 for unauthorized).
pub const EXPIRED: u16 = 4401;

/// The sub-protocol the client asked for (`Sec-WebSocket-Protocol`); 400 when none we speak.
#[derive(Debug, Clone, Copy)]
pub struct Protocol(async_graphql::http::WebSocketProtocols);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Protocol {
    type Rejection = axum::http::StatusCode;
    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        use std::str::FromStr;
        parts
            .headers
            .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .and_then(|list| list.split(',').find_map(|p| async_graphql::http::WebSocketProtocols::from_str(p.trim()).ok()))
            .map(Self)
            .ok_or(axum::http::StatusCode::BAD_REQUEST)
    }
}

/// What a new connection needs, taken from the upgrade request.
pub struct Connection {
    pub schema: PledgeflowSchema,
    pub keys: Keys,
    pub db: DatabaseConnection,
    pub graphiql: bool,
    pub client: ClientAddr,
    pub public: ConnectionLimiter,
}

/// The bearer token `connection_init` brought, if it verified, and who the staff registry said
/// its bearer was then.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    expires: i64,
    caller: Claims,
}

/// The schema, with the token checked before each operation runs.
#[derive(Clone)]
struct Guarded {
    schema: PledgeflowSchema,
    keys: Keys,
    db: DatabaseConnection,
    graphiql: bool,
    session: Arc<OnceLock<Session>>,
}

fn unauthenticated(message: String) -> Response {
    Response::from_errors(vec![super::access::request_error("UNAUTHENTICATED", message)])
}

impl Guarded {
    /// Refuses an operation whose connection's token has run out (at `now`, Unix seconds), no
    /// longer verifies (its issuer withdrew the key), or whose bearer the staff registry no
    /// longer bears out as it did at `connection_init` (deactivated, moved); and introspection
    /// without a token when GraphiQL is off.
    async fn refusal(&self, now: i64, request: &Request) -> Option<Response> {
        let session = self.session.get();
        if let Some(s) = session {
            if s.expires <= now {
                return Some(unauthenticated("the token has expired".into()));
            }
            match super::policy::caller(&self.db, self.keys.verify_fresh(&s.token).await.map(Some)).await {
                Err(e) => return Some(unauthenticated(e.to_string())),
                Ok(Some(now_is)) if now_is != s.caller => {
                    return Some(unauthenticated("the staff registry has changed for this connection's bearer: connect again".into()));
                }
                Ok(_) => {}
            }
        }
        if !self.graphiql && session.is_none() && super::http::introspects(&request.query) {
            return Some(unauthenticated("introspection needs a token".into()));
        }
        None
    }
}

fn is_subscription(request: &Request) -> bool {
    use async_graphql::parser::types::OperationType;
    let Ok(doc) = async_graphql::parser::parse_query(&request.query) else { return false };
    let name = request.operation_name.as_deref();
    doc.operations.iter().any(|(n, op)| (name.is_none() || n.map(|n| n.as_str()) == name) && op.node.ty == OperationType::Subscription)
}

impl Executor for Guarded {
    fn execute(&self, request: Request) -> impl std::future::Future<Output = Response> + Send {
        self.schema.execute(request)
    }

    fn execute_stream(&self, request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        let this = self.clone();
        futures::stream::once(async move {
            if let Some(refused) = this.refusal(chrono::Utc::now().timestamp(), &request).await {
                return futures::stream::once(ready(refused)).boxed();
            }
            let loaders = Loaders::new(&this.db);
            if is_subscription(&request) {
                // One subscription resolves many events over time: a cache would answer later
                // events with the rows read for the first.
                loaders.history.enable_all_cache(false);
                loaders.timers.enable_all_cache(false);
            }
            this.schema.execute_stream_with_session_data(request.data(loaders), session_data.unwrap_or_default())
        })
        .flatten()
        .boxed()
    }
}

/// How long until `expires` (Unix seconds) by the real clock.
fn until(expires: i64) -> Duration {
    let left = expires.saturating_mul(1000).saturating_sub(chrono::Utc::now().timestamp_millis());
    Duration::from_millis(left.max(0) as u64)
}

impl Connection {
    pub async fn serve(self, socket: WebSocket, protocol: Protocol) {
        let Connection { schema, keys, db, graphiql, client, public } = self;
        let session = Arc::new(OnceLock::new());
        let registry = db.clone();
        let guarded = Guarded { schema, keys: keys.clone(), db, graphiql, session: session.clone() };
        let (expiry_tx, mut expiry_rx) = tokio::sync::watch::channel(None::<i64>);
        let on_init = move |payload: serde_json::Value| async move {
            let header = ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload[k].as_str().map(str::to_string))
                .or_else(|| payload["token"].as_str().map(|t| format!("Bearer {t}")));
            // Checked against the staff registry like an HTTP request's (the policy's caller).
            let caller = super::policy::caller(&registry, keys.from_header(header.as_deref()).await).await;
            if let (Ok(Some(claims)), Some(h)) = (&caller, &header) {
                let token = h.get(7..).unwrap_or_default().trim().to_string();
                let _ = session.set(Session { token, expires: claims.exp, caller: claims.clone() });
                let _ = expiry_tx.send(Some(claims.exp));
            }
            let mut data = Data::default();
            data.insert(Caller(caller));
            data.insert(client);
            data.insert(public);
            Ok(data)
        };
        let (mut sink, stream) = socket.split();
        let input = stream
            .take_while(|r| ready(r.is_ok()))
            .filter_map(|m| ready(match m {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                _ => None,
            }));
        let mut messages = std::pin::pin!(async_graphql::http::WebSocket::new(guarded, input, protocol.0).on_connection_init(on_init));
        let mut expires: Option<i64> = None;
        let mut watching = true;
        loop {
            let deadline = expires.map(|e| tokio::time::Instant::now() + until(e));
            tokio::select! {
                message = messages.next() => match message {
                    Some(async_graphql::http::WsMessage::Text(text)) => {
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(async_graphql::http::WsMessage::Close(code, reason)) => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                        break;
                    }
                    None => break,
                },
                changed = expiry_rx.changed(), if watching => match changed {
                    Ok(()) => expires = *expiry_rx.borrow(),
                    Err(_) => watching = false,
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: EXPIRED, reason: "the token has expired".into() }))).await;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_operation_after_the_token_expires_is_refused() {
        let keys = Keys::hs256(b"0123456789abcdef0123456789abcdef");
        let now = chrono::Utc::now();
        let claims = crate::auth::Claims::new("w", vec!["window".into()], now, chrono::Duration::seconds(3));
        let token = keys.mint(&claims).unwrap();
        let session = Arc::new(OnceLock::new());
        session.set(Session { token, expires: claims.exp, caller: claims.clone() }).unwrap();
        let guarded = Guarded { schema: super::super::schema(None), keys, db: DatabaseConnection::default(), graphiql: false, session };
        let request = Request::new("{ __typename }");
        // Within the verifier's leeway, yet past `exp`: refused all the same, before the registry
        // is asked (the operations allowed before it are the websocket tests' over the real binary).
        let refused = guarded.refusal(claims.exp, &request).await.expect("refused at expiry");
        assert_eq!(refused.errors[0].extensions.as_ref().unwrap().get("code"), Some(&async_graphql::Value::from("UNAUTHENTICATED")));
    }
}
