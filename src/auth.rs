//! Who is calling: bearer JWTs. The embedded default signs with an HS256 secret, generated on
//! first start into a key file readable by this user alone — never into the database — unless
//! `PLEDGEFLOW_JWT_SECRET` is set. `pledgeflow token` mints tokens for local use. An outside
//! issuer's tokens are checked by its public key (a PEM file) or its key set (a JWKS URL, kept
//! fresh by `jwks`).

mod jwks;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, decode_header, encode, errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult};
use serde::{Deserialize, Serialize};

use crate::store::stmt;

/// What a token says of its bearer. Staff carry region, department and division; an
/// applicant carries the enterprise's unified social credit code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Absent from an identity provider's ID token, which vouches for the person only: the
    /// staff registry then gives the roles (`api::policy::resolve`).
    #[serde(default)]
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
    /// Signed by a key the issuer's key set does not hold (withdrawn, or never its).
    #[error("the token's key {0:?} is not among the issuer's keys")]
    UnknownKey(String),
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
    decoding: Decoding,
    validation: Validation,
    /// Longer-lived tokens are refused, however well signed.
    max_lifetime: Duration,
}

/// Where the key that checks a token comes from.
#[derive(Clone)]
enum Decoding {
    Key(DecodingKey),
    /// The issuer's key set: the token's `kid` picks the key.
    Set(Arc<jwks::Jwks>),
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
        Self { encoding: Some(EncodingKey::from_secret(secret)), decoding: Decoding::Key(DecodingKey::from_secret(secret)), validation, max_lifetime: Self::DEFAULT_MAX_LIFETIME }
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
        Ok(Self::outside(algorithm, Decoding::Key(decoding), issuer, audience))
    }

    /// Tokens from an outside issuer, checked with the key their `kid` names in the issuer's
    /// key set at `url` (fetched now; a server that cannot read it does not start).
    pub async fn issuer_jwks(algorithm: &str, url: &str, issuer: &str, audience: Option<&str>, min_refresh: std::time::Duration, max_age: std::time::Duration) -> Result<Self, String> {
        let algorithm = match algorithm {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => return Err(format!("algorithm {other:?}: expected RS256 or ES256")),
        };
        let set = jwks::Jwks::fetch_first(url, algorithm, min_refresh, max_age).await?;
        Ok(Self::outside(algorithm, Decoding::Set(Arc::new(set)), issuer, audience))
    }

    fn outside(algorithm: Algorithm, decoding: Decoding, issuer: &str, audience: Option<&str>) -> Self {
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
        Self { encoding: None, decoding, validation, max_lifetime: Self::DEFAULT_MAX_LIFETIME }
    }

    /// Signs a token; `None` when tokens come from an outside issuer.
    /// Whether this installation signs its own tokens (an outside issuer's keys cannot).
    pub fn can_mint(&self) -> bool {
        self.encoding.is_some()
    }

    pub fn mint(&self, claims: &Claims) -> Option<String> {
        let key = self.encoding.as_ref()?;
        Some(encode(&Header::new(Algorithm::HS256), claims, key).expect("HS256 signing of plain claims cannot fail"))
    }

    /// Checks a token with the keys as they are; [`Keys::verify_fresh`] refreshes an issuer's
    /// key set first when it is stale or the token names a key it does not hold.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let key = match &self.decoding {
            Decoding::Key(key) => key.clone(),
            Decoding::Set(set) => {
                let header = decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
                let kid = header.kid.ok_or_else(|| AuthError::Malformed("no key id (kid) in the token's header".into()))?;
                set.key(&kid).ok_or(AuthError::UnknownKey(kid))?
            }
        };
        let claims = decode::<Claims>(token, &key, &self.validation).map(|d| d.claims).map_err(|e| match e.kind() {
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
        // An outside identity provider's ID token names the person and no roles of ours; the
        // registry gives them. This installation's own tokens always say which roles they carry.
        let roles_needed = self.encoding.is_some();
        if (roles_needed && claims.roles.is_empty()) || !claims.roles.iter().all(known) {
            return Err(AuthError::WrongScope(format!("roles {:?} are not roles of this service", claims.roles)));
        }
        Ok(claims)
    }

    /// Like [`Keys::verify`], with an issuer's key set refreshed first when it is older than
    /// its age allows, and again when the token names a key it does not hold (a key the issuer
    /// has just added), at most once per the minimum interval.
    pub async fn verify_fresh(&self, token: &str) -> Result<Claims, AuthError> {
        let Decoding::Set(set) = &self.decoding else { return self.verify(token) };
        if set.stale() {
            set.refresh().await;
        }
        match self.verify(token) {
            Err(AuthError::UnknownKey(_)) => {
                set.refresh().await;
                self.verify(token)
            }
            other => other,
        }
    }

    /// Reads `Authorization: Bearer …`; `Ok(None)` when there is none.
    pub async fn from_header(&self, header: Option<&str>) -> Result<Option<Claims>, AuthError> {
        match header {
            None => Ok(None),
            Some(h) => match h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) {
                Some(token) => self.verify_fresh(token.trim()).await.map(Some),
                None => Err(AuthError::Malformed("expected `Authorization: Bearer <token>`".into())),
            },
        }
    }
}

const SECRET_KEY: &str = "jwt_hs256_secret";

/// How tokens are checked and signed here, as the configuration gives it (`Config::tokens`).
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// HS256 secret; unset, the key file's (generated on first use).
    pub secret: Option<String>,
    /// This installation's signing key file.
    pub key_file: std::path::PathBuf,
    /// An outside issuer, with its public key (PEM file) or its key set (JWKS URL).
    pub issuer: Option<String>,
    pub public_key_file: Option<std::path::PathBuf>,
    pub jwks_url: Option<String>,
    pub jwks_min_refresh: std::time::Duration,
    pub jwks_max_age: std::time::Duration,
    pub algorithm: String,
    pub audience: Option<String>,
    pub max_lifetime: Duration,
}

/// The outside issuer's key when one is configured; else the configured HS256 secret, or the
/// installation's generated one (made on first use).
pub async fn keys(db: &DatabaseConnection, settings: &TokenSettings) -> anyhow::Result<Keys> {
    if let (Some(issuer), Some(url)) = (&settings.issuer, &settings.jwks_url) {
        return Keys::issuer_jwks(&settings.algorithm, url, issuer, settings.audience.as_deref(), settings.jwks_min_refresh, settings.jwks_max_age)
            .await
            .map(|k| k.with_max_lifetime(settings.max_lifetime))
            .map_err(|e| anyhow::anyhow!("PLEDGEFLOW_JWT_JWKS_URL: {e}"));
    }
    if let Some(issuer) = &settings.issuer {
        let path = settings.public_key_file.as_ref().ok_or_else(|| anyhow::anyhow!("PLEDGEFLOW_JWT_ISSUER needs PLEDGEFLOW_JWT_PUBLIC_KEY_FILE"))?;
        let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("PLEDGEFLOW_JWT_PUBLIC_KEY_FILE {}: {e}", path.display()))?;
        return Keys::issuer(&settings.algorithm, &pem, issuer, settings.audience.as_deref())
            .map(|k| k.with_max_lifetime(settings.max_lifetime))
            .map_err(|e| anyhow::anyhow!("PLEDGEFLOW_JWT_PUBLIC_KEY_FILE {}: {e}", path.display()));
    }
    Ok(own_keys(db, settings).await?.with_max_lifetime(settings.max_lifetime))
}

/// Creates `path` with `text`, readable by this user alone (its folder too when made here);
/// `Ok(false)` when another process created it first.
fn create_private(path: &std::path::Path, text: &str) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(mut f) => f.write_all(text.as_bytes()).map(|_| true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

async fn own_keys(db: &DatabaseConnection, settings: &TokenSettings) -> anyhow::Result<Keys> {
    if let Some(secret) = &settings.secret {
        return Ok(Keys::hs256(secret.as_bytes()));
    }
    #[derive(FromQueryResult)]
    struct Row {
        value: String,
    }
    // An installation from before kept its key in the database: it moves to the file (tokens
    // minted before stay valid) and leaves the database.
    let legacy = match db.query_one_raw(stmt(db, "SELECT value FROM settings WHERE key = ?", vec![SECRET_KEY.into()])).await? {
        Some(row) => Some(Row::from_query_result(&row, "")?.value),
        None => None,
    };
    let path = &settings.key_file;
    let shown = path.display().to_string();
    if !path.exists() {
        let fresh = || {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            hex::encode(bytes)
        };
        let secret = legacy.clone().unwrap_or_else(fresh);
        if create_private(&path, &secret).map_err(|e| anyhow::anyhow!("creating the signing key file {shown}: {e}"))? {
            tracing::info!(file = %shown, moved_from_database = legacy.is_some(), "signing key file created (0600); back it up with the database");
        }
    }
    let secret = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("reading the signing key file {shown}: {e}"))?.trim().to_string();
    if secret.len() < 32 {
        anyhow::bail!("the signing key file {shown} holds less than 32 characters");
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(file = %shown, mode = format!("{:o}", mode & 0o777), "the signing key file is readable by others: chmod 600 it");
        }
    }
    if legacy.is_some() {
        db.execute_raw(stmt(db, "DELETE FROM settings WHERE key = ?", vec![SECRET_KEY.into()])).await?;
    }
    Ok(Keys::hs256(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_round_trip_and_each_failure_is_told_apart() {
        let keys = Keys::hs256(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let claims = Claims::new("ops-1", vec!["regional_admin".into()], now, Duration::hours(1));
        let token = keys.mint(&claims).unwrap();
        assert_eq!(keys.verify(&token).unwrap(), claims);
        assert_eq!(keys.from_header(Some(&format!("Bearer {token}"))).await.unwrap(), Some(claims));
        assert_eq!(keys.from_header(None).await.unwrap(), None);

        let expired = keys.mint(&Claims::new("x", vec!["window".into()], now - Duration::hours(3), Duration::hours(1))).unwrap();
        assert_eq!(keys.verify(&expired), Err(AuthError::Expired));
        let other = Keys::hs256(b"another-secret-another-secret-xx").mint(&Claims::new("x", vec!["window".into()], now, Duration::hours(1))).unwrap();
        assert_eq!(keys.verify(&other), Err(AuthError::BadSignature));
        assert!(matches!(keys.verify("not.a.token"), Err(AuthError::Malformed(_))));
        assert!(matches!(keys.from_header(Some("Basic abc")).await, Err(AuthError::Malformed(_))));
        let stranger = keys.mint(&Claims::new("x", vec!["superuser".into()], now, Duration::hours(1))).unwrap();
        assert!(matches!(keys.verify(&stranger), Err(AuthError::WrongScope(_))));
    }
}
