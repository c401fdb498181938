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
    /// Absent in some issuers' tokens: the lifetime is then counted from now.
    #[serde(default)]
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
    /// Well signed, but not for this service: another issuer or audience, or roles it does not know.
    #[error("the token is not valid here: {0}")]
    WrongScope(String),
    /// Well signed, but its bearer is not who the staff registry says (`api::policy::resolve`):
    /// `reason` is the machine-readable cause.
    #[error("{message}")]
    Registry { reason: &'static str, message: String },
}

#[derive(Clone)]
pub struct Keys {
    /// Present when this installation signs its own tokens (HS256); absent when an outside
    /// issuer (a unified government login) signs them and only its public key is here.
    encoding: Option<EncodingKey>,
    decoding: DecodingKey,
    validation: Validation,
    /// Longer-lived tokens are refused, however well signed.
    max_lifetime: Duration,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({:?}, hidden)", self.validation.algorithms)
    }
}

impl Keys {
    /// The longest lifetime accepted unless configured (`PLEDGEFLOW_JWT_MAX_LIFETIME_HOURS`).
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::hours(24);

    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Signed and checked by this installation's own clocks: no skew to allow for.
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { encoding: Some(EncodingKey::from_secret(secret)), decoding: DecodingKey::from_secret(secret), validation, max_lifetime: Self::DEFAULT_MAX_LIFETIME }
    }

    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// Tokens from an outside issuer, checked with its public key (PEM, RS256 or ES256), its
    /// `iss` and, if given, the `aud` it issues for this service.
    pub fn issuer(algorithm: &str, public_pem: &[u8], issuer: &str, audience: Option<&str>) -> Result<Self, String> {
        let (algorithm, decoding) = match algorithm {
            "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(public_pem)),
            "ES256" => (Algorithm::ES256, DecodingKey::from_ec_pem(public_pem)),
            other => return Err(format!("algorithm {other:?}: expected RS256 or ES256")),
        };
        let decoding = decoding.map_err(|e| format!("public key: {e}"))?;
        let mut validation = Validation::new(algorithm);
        // An outside issuer's clock may run a little apart from ours.
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        match audience {
            // A configured audience must be in the token: one without `aud` is not for us.
            Some(aud) => {
                validation.set_audience(&[aud]);
                validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
            }
            None => {
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "sub", "iss"]);
            }
        }
        Ok(Self { encoding: None, decoding, validation, max_lifetime: Self::DEFAULT_MAX_LIFETIME })
    }

    /// Signs a token; `None` when tokens come from an outside issuer.
    pub fn mint(&self, claims: &Claims) -> Option<String> {
        let key = self.encoding.as_ref()?;
        Some(encode(&Header::new(Algorithm::HS256), claims, key).expect("HS256 signing of plain claims cannot fail"))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidIssuer => AuthError::WrongScope("issued by another issuer".into()),
            ErrorKind::InvalidAudience => AuthError::WrongScope("issued for another audience".into()),
            ErrorKind::InvalidAlgorithm => AuthError::WrongScope("signed with another algorithm".into()),
            ErrorKind::ImmatureSignature => AuthError::WrongScope("not valid yet (nbf is in the future)".into()),
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::WrongScope("no audience (aud): it is not issued for this service".into()),
            _ => AuthError::Malformed(e.to_string()),
        })?;
        // From when it was issued (or, without `iat`, from now) to its expiry.
        let from = if claims.iat > 0 { claims.iat } else { Utc::now().timestamp() };
        if claims.exp.saturating_sub(from) > self.max_lifetime.num_seconds() {
            return Err(AuthError::WrongScope(format!("valid for longer than the {} hours allowed", self.max_lifetime.num_hours())));
        }
        let known = |r: &String| crate::workflow::vocabulary::ROLES.contains(&r.as_str()) && r != "system";
        if claims.roles.is_empty() || !claims.roles.iter().all(known) {
            return Err(AuthError::WrongScope(format!("roles {:?} are not roles of this service", claims.roles)));
        }
        Ok(claims)
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

/// The outside issuer's key when one is configured; else the configured HS256 secret, or the
/// installation's generated one (made on first use).
pub async fn keys(db: &DatabaseConnection, config: &crate::config::Config, now: DateTime<Utc>) -> anyhow::Result<Keys> {
    if let Some(issuer) = &config.jwt_issuer {
        let path = config.jwt_public_key_file.as_ref().ok_or_else(|| anyhow::anyhow!("PLEDGEFLOW_JWT_ISSUER needs PLEDGEFLOW_JWT_PUBLIC_KEY_FILE"))?;
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("PLEDGEFLOW_JWT_PUBLIC_KEY_FILE {}: {e}", path.display()))?;
        return Keys::issuer(&config.jwt_algorithm, &pem, issuer, config.jwt_audience.as_deref())
            .map(|k| k.with_max_lifetime(config.jwt_max_lifetime))
            .map_err(|e| anyhow::anyhow!("PLEDGEFLOW_JWT_PUBLIC_KEY_FILE {}: {e}", path.display()));
    }
    Ok(own_keys(db, config.jwt_secret.as_deref(), now).await?.with_max_lifetime(config.jwt_max_lifetime))
}

async fn own_keys(db: &DatabaseConnection, configured: Option<&str>, now: DateTime<Utc>) -> Result<Keys, DbErr> {
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
        let token = keys.mint(&claims).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!(keys.from_header(Some(&format!("Bearer {token}"))).unwrap(), Some(claims));
        assert_eq!(keys.from_header(None).unwrap(), None);

        let expired = keys.mint(&Claims::new("x", vec!["window".into()], now - Duration::hours(3), Duration::hours(1))).unwrap();
        assert_eq!(keys.verify(&expired), Err(AuthError::Expired));
        let other = Keys::hs256(b"another-secret-another-secret-xx").mint(&Claims::new("x", vec!["window".into()], now, Duration::hours(1))).unwrap();
        assert_eq!(keys.verify(&other), Err(AuthError::BadSignature));
        assert!(matches!(keys.verify("not.a.token"), Err(AuthError::Malformed(_))));
        assert!(matches!(keys.from_header(Some("Basic abc")), Err(AuthError::Malformed(_))));
        let stranger = keys.mint(&Claims::new("x", vec!["superuser".into()], now, Duration::hours(1))).unwrap();
        assert!(matches!(keys.verify(&stranger), Err(AuthError::WrongScope(_))));
    }
}
