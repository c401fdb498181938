//! Who is calling: bearer JWTs. The embedded default signs with an HS256 secret, generated on
//! first start and kept in the database (so every process of one installation shares it)
//! unless `PLEDGEFLOW_JWT_SECRET` is set. `pledgeflow token` mints tokens for local use.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, FromQueryResult};
use serde::{Deserialize, Serialize};

use crate::store::stmt;

/// What a token says of its bearer. Staff carry region, department and division; an
/// applicant carries the enterprise's unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uscc: Option<String>,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn new(sub: &str, roles: Vec<String>, now: DateTime<Utc>, valid_for: Duration) -> Self {
        Self {
            sub: sub.to_string(),
            name: None,
            roles,
            region: None,
            department: None,
            division: None,
            uscc: None,
            iat: now.timestamp(),
            exp: (now + valid_for).timestamp(),
        }
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token is malformed: {0}")]
    Malformed(String),
}

#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(HS256, hidden)")
    }
}

impl Keys {
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    pub fn mint(&self, claims: &Claims) -> String {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding).expect("HS256 signing of plain claims cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            _ => AuthError::Malformed(e.to_string()),
        })
    }

    /// Reads `Authorization: Bearer …`; `Ok(None)` when there is none.
    pub fn from_header(&self, header: Option<&str>) -> Result<Option<Claims>, AuthError> {
        match header {
            None => Ok(None),
            Some(h) => match h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) {
                Some(token) => self.verify(token.trim()).map(Some),
                None => Err(AuthError::Malformed("expected `Authorization: Bearer <token>`".into())),
            },
        }
    }
}

const SECRET_KEY: &str = "jwt_hs256_secret";

/// The configured secret, or the installation's generated one (made on first use).
pub async fn keys(db: &DatabaseConnection, configured: Option<&str>, now: DateTime<Utc>) -> Result<Keys, DbErr> {
    if let Some(secret) = configured {
        return Ok(Keys::hs256(secret.as_bytes()));
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    db.execute_raw(stmt(
        db,
        "INSERT INTO settings (key, value, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        vec![SECRET_KEY.into(), hex::encode(bytes).into(), now.timestamp_millis().into()],
    ))
    .await?;
    #[derive(FromQueryResult)]
    struct Row {
        value: String,
    }
    let row = db
        .query_one_raw(stmt(db, "SELECT value FROM settings WHERE key = ?", vec![SECRET_KEY.into()]))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(SECRET_KEY.into()))?;
    let secret = Row::from_query_result(&row, "")?.value;
    Ok(Keys::hs256(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_each_failure_is_told_apart() {
        let keys = Keys::hs256(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let claims = Claims::new("ops-1", vec!["regional_admin".into()], now, Duration::hours(1));
        let token = keys.mint(&claims);
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!(keys.from_header(Some(&format!("Bearer {token}"))).unwrap(), Some(claims));
        assert_eq!(keys.from_header(None).unwrap(), None);

        let expired = keys.mint(&Claims::new("x", vec![], now - Duration::hours(3), Duration::hours(1)));
        assert_eq!(keys.verify(&expired), Err(AuthError::Expired));
        let other = Keys::hs256(b"another-secret-another-secret-xx").mint(&Claims::new("x", vec![], now, Duration::hours(1)));
        assert_eq!(keys.verify(&other), Err(AuthError::BadSignature));
        assert!(matches!(keys.verify("not.a.token"), Err(AuthError::Malformed(_))));
        assert!(matches!(keys.from_header(Some("Basic abc")), Err(AuthError::Malformed(_))));
    }
}
